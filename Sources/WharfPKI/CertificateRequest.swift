import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1
import WharfCore
import X509

/// A partner's own certificate signing request (PKCS#10), checked before Wharf signs it.
///
/// Only the public key is taken from it. The signature must verify (the partner holds the
/// key), the key must be P-256, P-384 or RSA of at least 2048 bits; the subject and any
/// requested extensions are ignored, because Wharf sets the subject and the usage itself.
public struct CertificateRequest: Sendable {
    public let publicKey: Certificate.PublicKey
    /// The subject the partner asked for (printed, never used).
    public let requestedSubject: DistinguishedName
    /// The kind of key, such as `P-256` or `RSA-3072`.
    public let keyDescription: String

    public init(pem text: String, source: String) throws(WharfError) {
        let unsupportedKey = WharfError.invalid(
            "the request in \(source) is for a key Wharf does not sign: it takes P-256, P-384 or RSA of 2048 bits or more",
            fix: "create a key with `openssl ecparam -genkey -name prime256v1 -noout -out KEY` or `openssl genrsa -out KEY 3072`, and a request for it"
        )
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: text)
        } catch {
            throw .invalid(
                "\(source) is not a certificate request Wharf can read",
                fix: "give a PEM request (-----BEGIN CERTIFICATE REQUEST-----); convert DER with `openssl req -inform der -in FILE -out FILE.pem`"
            )
        }
        guard ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"].contains(document.discriminator) else {
            throw .invalid(
                "\(source) holds a \(document.discriminator), not a certificate request",
                fix: "give the PEM file `openssl req -new` wrote (-----BEGIN CERTIFICATE REQUEST-----)"
            )
        }
        let request: CertificateSigningRequest
        do {
            request = try CertificateSigningRequest(derEncoded: document.derBytes)
        } catch {
            // swift-crypto refuses to parse RSA keys under 2048 bits: a request that is
            // well-formed up to its key is refused for the key, not as unreadable.
            if Self.hasPublicKeyInfo(document.derBytes) { throw unsupportedKey }
            throw .invalid(
                "\(source) is not a certificate request Wharf can read",
                fix: "give a PEM request (-----BEGIN CERTIFICATE REQUEST-----) as `openssl req -new` writes it"
            )
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw .invalid(
                "the signature of the request in \(source) does not verify",
                fix: "create the request again with the partner's key (`openssl req -new -key KEY -out REQUEST.csr`)"
            )
        }
        if P256.Signing.PublicKey(request.publicKey) != nil {
            keyDescription = "P-256"
        } else if P384.Signing.PublicKey(request.publicKey) != nil {
            keyDescription = "P-384"
        } else if let rsa = _RSA.Signing.PublicKey(request.publicKey), rsa.keySizeInBits >= 2048 {
            keyDescription = "RSA-\(rsa.keySizeInBits)"
        } else {
            throw unsupportedKey
        }
        publicKey = request.publicKey
        requestedSubject = request.subject
    }

    /// Whether `der` has the shape of a PKCS#10 request up to its SubjectPublicKeyInfo:
    /// SEQUENCE { SEQUENCE { version INTEGER, subject SEQUENCE, SEQUENCE { SEQUENCE { OID ... } ... } ... } ... }.
    private static func hasPublicKeyInfo(_ der: [UInt8]) -> Bool {
        guard let root = try? DER.parse(der), case .constructed(let outer) = root.content,
              let info = outer.first(where: { _ in true }), case .constructed(let fields) = info.content
        else { return false }
        let parts = Array(fields)
        guard parts.count >= 3, case .constructed(let keyInfo) = parts[2].content,
              let algorithm = keyInfo.first(where: { _ in true }), case .constructed(let identifier) = algorithm.content,
              let oid = identifier.first(where: { _ in true })
        else { return false }
        return oid.identifier == .objectIdentifier
    }
}
