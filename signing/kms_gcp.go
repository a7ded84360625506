//go:build kms_gcp

package signing

// Links sigstore's gcp KMS provider, which registers gcpkms://.
import _ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
