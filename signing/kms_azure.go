//go:build kms_azure

package signing

// Links sigstore's azure KMS provider, which registers azurekms://.
import _ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
