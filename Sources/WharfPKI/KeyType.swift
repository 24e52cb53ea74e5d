import Crypto
import _CryptoExtras
import WharfCore
import X509

/// The kind of key Wharf generates. P-256 is the default: it signs about 35 times faster
/// than RSA-2048, which matters for TLS handshakes; RSA-2048 is there for partners whose
/// software knows nothing else.
public enum KeyType: String, Sendable, CaseIterable {
    case p256
    case rsa2048

    /// A new private key of this type.
    public func generate() throws(WharfError) -> Certificate.PrivateKey {
        switch self {
        case .p256:
            return Certificate.PrivateKey(P256.Signing.PrivateKey())
        case .rsa2048:
            do {
                return Certificate.PrivateKey(try _RSA.Signing.PrivateKey(keySize: .bits2048))
            } catch {
                throw .cryptography("cannot generate an RSA-2048 key: \(error)")
            }
        }
    }
}

extension Certificate.PrivateKey {
    /// The signature algorithm Wharf uses with this key: ECDSA or RSA with SHA-256.
    var preferredSignatureAlgorithm: Certificate.SignatureAlgorithm {
        if supportedSignatureAlgorithms.contains(.ecdsaWithSHA256) { return .ecdsaWithSHA256 }
        return .sha256WithRSAEncryption
    }
}

extension KeyType {
    /// The type of an existing key.
    public init(of key: Certificate.PrivateKey) {
        self = key.supportedSignatureAlgorithms.contains(.ecdsaWithSHA256) ? .p256 : .rsa2048
    }
}
