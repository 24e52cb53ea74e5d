import Crypto
import Foundation
import SwiftASN1
import WharfCore
import X509

extension Certificate {
    /// The DER encoding.
    public var derBytes: [UInt8] {
        var serializer = DER.Serializer()
        // Serialising a certificate that was parsed or built succeeds; a failure is a bug.
        try! serializer.serialize(self)
        return serializer.serializedBytes
    }

    /// The SHA-256 fingerprint of the DER encoding, as `openssl x509 -fingerprint -sha256` computes it.
    public var fingerprint: CertificateFingerprint {
        CertificateFingerprint(digest: SHA256.hash(data: derBytes))
    }

    /// The subject, normalised for matching against partner identities.
    public var subjectName: SubjectName? {
        try? SubjectName(distinguishedName: subject)
    }

    /// The curl-style pin of the certificate's public key.
    public var publicKeyPin: PublicKeyPin {
        publicKey.pin
    }

    /// PEM text ending in a newline, ready to concatenate into a bundle.
    public var pemText: String {
        try! serializeAsPEM().pemString + "\n"
    }

    /// Every certificate in the PEM `text`, in order.
    ///
    /// - Throws: when `text` holds no certificate or a block does not parse; `source`
    ///   names the file in the message.
    public static func parseAll(pem text: String, source: String) throws(WharfError) -> [Certificate] {
        let notACertificate = WharfError.invalid(
            "\(source) is not a certificate",
            fix: "give a PEM file that starts with -----BEGIN CERTIFICATE-----"
        )
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw notACertificate
        }
        let certificates = documents.filter { $0.discriminator == "CERTIFICATE" }
        guard !certificates.isEmpty else { throw notACertificate }
        do {
            return try certificates.map { try Certificate(derEncoded: $0.derBytes) }
        } catch {
            throw .invalid("\(source) holds a certificate that does not parse: \(error)")
        }
    }
}

extension Certificate.PublicKey {
    /// `sha256//` and the base64 SHA-256 of the full SubjectPublicKeyInfo DER, as curl's
    /// `CURLOPT_PINNEDPUBLICKEY` expects.
    public var pin: PublicKeyPin {
        var serializer = DER.Serializer()
        try! serializer.serialize(self)
        return PublicKeyPin(spkiDigest: SHA256.hash(data: serializer.serializedBytes))
    }
}

extension SubjectName {
    /// The normalised form of a certificate's distinguished name.
    public init(distinguishedName: DistinguishedName) throws(WharfError) {
        var pairs: [(type: String, value: String)] = []
        for rdn in distinguishedName {
            for attribute in rdn {
                let value = String(attribute.value) ?? attribute.value.description
                pairs.append((attribute.type.description, value))
            }
        }
        try self.init(attributes: pairs)
    }
}

extension Certificate {
    /// The DNS names and IP addresses of the subjectAltName extension, as text.
    public var alternativeNames: [String]? {
        guard let names = try? extensions.subjectAlternativeNames else { return nil }
        return names.compactMap { name -> String? in
            switch name {
            case .dnsName(let dns): return dns
            case .ipAddress(let octets):
                let bytes = Array(octets.bytes)
                var text = [CChar](repeating: 0, count: 64)
                let family = bytes.count == 4 ? AF_INET : AF_INET6
                guard bytes.count == 4 || bytes.count == 16,
                      inet_ntop(family, bytes, &text, socklen_t(text.count)) != nil else { return nil }
                return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            default: return nil
            }
        }
    }
}

extension DistinguishedName {
    /// The first value of an attribute, such as `.RDNAttributeType.commonName`, as text.
    public func first(_ type: ASN1ObjectIdentifier) -> String? {
        lazy.flatMap { $0 }.first { $0.type == type }.flatMap { String($0.value) }
    }
}

extension Certificate {
    /// Whether the certificate names itself as issuer and its own key verifies its signature.
    public var isSelfSigned: Bool {
        issuer == subject && publicKey.isValidSignature(signature, for: self)
    }
}
