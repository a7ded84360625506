package signing

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// kmsTags lists the KMS schemes whose sigstore provider is linked only when
// the binary is built with the tag (see kms_*.go).
var kmsTags = []struct{ scheme, tag string }{
	{"awskms://", "kms_aws"},
	{"gcpkms://", "kms_gcp"},
	{"azurekms://", "kms_azure"},
	{"hashivault://", "kms_hashivault"},
	{"openbao://", "kms_hashivault"},
}

// loadKMS loads a signer through sigstore's KMS registry.
func loadKMS(ctx context.Context, ref string) (*Signer, error) {
	linked := kms.SupportedProviders()
	for _, k := range kmsTags {
		if strings.HasPrefix(ref, k.scheme) && !slices.Contains(linked, k.scheme) {
			return nil, fmt.Errorf("signing: %s: this binary has no %s support: rebuild with -tags %s", ref, k.scheme, k.tag)
		}
	}
	sv, err := kms.Get(ctx, ref, crypto.SHA256)
	if pnf := (*kms.ProviderNotFoundError)(nil); errors.As(err, &pnf) {
		return nil, fmt.Errorf("signing: %s: no KMS provider for this scheme (build tags kms_aws, kms_gcp, kms_azure, kms_hashivault link the cloud providers)", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: KMS key %s: %w", ref, err)
	}
	pub, err := sv.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("signing: KMS key %s: get public key: %w", ref, err)
	}
	v, err := newVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("signing: KMS key %s: %w", ref, err)
	}
	return &Signer{s: sv, v: v}, nil
}
