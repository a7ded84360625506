//go:build kms_hashivault

package signing

// Links sigstore's hashivault KMS provider, which registers hashivault:// and openbao://.
import _ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
