//go:build kms_aws

package signing

// Links sigstore's aws KMS provider, which registers awskms://.
import _ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
