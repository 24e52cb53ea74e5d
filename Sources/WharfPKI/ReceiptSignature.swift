import Crypto
import Foundation
import _CryptoExtras
import WharfCore
import X509

/// Signs receipts so that a partner or an auditor can check them later, with nothing but
/// Wharf's server certificate: a JWS (RFC 7515, compact serialization, payload included)
/// over the receipt's canonical JSON, signed with the server key — ES256 for a P-256 key,
/// RS256 for RSA — naming the certificate by its SHA-256 (`x5t#S256`).
public struct ReceiptSigner: Sendable {
    /// The key's bytes (swift-crypto's key types are not `Sendable` here): cheap to read again.
    private enum Key: Sendable {
        case p256(raw: Data)
        case rsa(der: Data)
    }

    private let key: Key
    /// The certificate whose key signs: the one a verifier checks against.
    public let certificate: Certificate
    private let encodedHeader: String

    public init(_ server: KeyedCertificate) throws(WharfError) {
        let pem = server.privateKeyPEM
        let algorithm: String
        if let p256 = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            (key, algorithm) = (.p256(raw: p256.rawRepresentation), "ES256")
        } else if let rsa = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) {
            (key, algorithm) = (.rsa(der: rsa.derRepresentation), "RS256")
        } else {
            throw .cryptography("the server key is neither P-256 nor RSA, so it cannot sign receipts")
        }
        certificate = server.certificate
        let thumbprint = JOSE.base64URL(Array(SHA256.hash(data: server.certificate.derBytes)))
        encodedHeader = JOSE.base64URL(Array("{\"alg\":\"\(algorithm)\",\"typ\":\"wharf-receipt+jws\",\"x5t#S256\":\"\(thumbprint)\"}".utf8))
    }

    /// `header.payload.signature`, each part base64url without padding.
    public func sign(_ payload: String) throws(WharfError) -> String {
        let input = encodedHeader + "." + JOSE.base64URL(Array(payload.utf8))
        let signature: [UInt8]
        do {
            switch key {
            case .p256(let raw):
                signature = Array(try P256.Signing.PrivateKey(rawRepresentation: raw).signature(for: Array(input.utf8)).rawRepresentation)
            case .rsa(let der):
                signature = Array(try _RSA.Signing.PrivateKey(derRepresentation: der).signature(for: Array(input.utf8), padding: .insecurePKCS1v1_5).rawRepresentation)
            }
        } catch {
            throw .cryptography("the receipt could not be signed: \(error)")
        }
        return input + "." + JOSE.base64URL(signature)
    }
}

/// Checking a receipt's signature against the server certificates Wharf has signed with.
public enum ReceiptSignature {
    public struct Verified: Sendable {
        /// The receipt JSON that was signed.
        public let payload: String
        public let certificate: Certificate
    }

    /// The payload of `jws` (the receipt JSON), unchecked.
    public static func payload(of jws: String) throws(WharfError) -> String {
        let parts = jws.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = JOSE.decode(String(parts[1])) else {
            throw .invalid("the stored signature is not a JWS")
        }
        return String(decoding: payload, as: UTF8.self)
    }

    /// Whether `jws` names `certificate` as its signer (its `x5t#S256`), signature unchecked.
    public static func names(_ certificate: Certificate, asSignerOf jws: String) -> Bool {
        let header = jws.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
        guard let bytes = JOSE.decode(header), let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let thumbprint = object["x5t#S256"] as? String else { return false }
        return thumbprint == Self.thumbprint(of: certificate)
    }

    private static func thumbprint(of certificate: Certificate) -> String {
        JOSE.base64URL(Array(SHA256.hash(data: certificate.derBytes)))
    }

    public static func verify(_ jws: String, among certificates: [Certificate]) throws(WharfError) -> Verified {
        let parts = jws.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let headerBytes = JOSE.decode(parts[0]), let payloadBytes = JOSE.decode(parts[1]),
              let signature = JOSE.decode(parts[2]),
              let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
              let algorithm = header["alg"] as? String, let thumbprint = header["x5t#S256"] as? String
        else {
            throw .invalid("the signature is not a receipt JWS (header.payload.signature, base64url)", fix: "give the Wharf-Receipt-Signature header's value as it was sent")
        }
        guard let certificate = certificates.first(where: { Self.thumbprint(of: $0) == thumbprint }) else {
            throw .invalid(
                "the receipt was signed with a server certificate this home does not have (x5t#S256 \(EscapedText.terminal(thumbprint)))",
                fix: "verify it in the home that issued it; pki/server-history/ keeps every earlier server certificate"
            )
        }
        let input = Array((parts[0] + "." + parts[1]).utf8)
        let valid: Bool
        switch algorithm {
        case "ES256":
            valid = (try? P256.Signing.PublicKey(certificate.publicKey).map {
                $0.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: signature), for: input)
            }) == true
        case "RS256":
            valid = _RSA.Signing.PublicKey(certificate.publicKey).map {
                $0.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: input, padding: .insecurePKCS1v1_5)
            } == true
        default:
            throw .invalid("the signature's algorithm \(EscapedText.terminal(algorithm)) is not ES256 or RS256")
        }
        guard valid else {
            throw .invalid("the signature does not match the receipt: it was changed, or not signed by this certificate")
        }
        return Verified(payload: String(decoding: payloadBytes, as: UTF8.self), certificate: certificate)
    }
}

/// Base64url without padding (RFC 7515, section 2).
enum JOSE {
    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 != UInt8(ascii: "=") }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map(Array.init)
    }
}
