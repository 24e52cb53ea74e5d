import Foundation
import SwiftASN1
import WharfCore
import X509

/// A CRL (RFC 5280 §5) published by a partner's own CA, read from a file the operator
/// names with `partner update NAME --crl FILE`: which serials it revokes and until when it
/// is current. Only a list signed by one of the partner's `--trust-ca` certificates is
/// accepted.
public struct PartnerRevocationList: Sendable {
    public let issuer: DistinguishedName
    public let thisUpdate: Date
    /// When the CA promises the next list; nil if the list names none (then it never
    /// goes stale, which RFC 5280 does not allow CAs to do, but some do).
    public let nextUpdate: Date?
    /// Revoked serials, as `Revocation.normalizedSerial` writes them.
    public let serials: Set<String>

    private let signedBytes: [UInt8]
    private let signatureAlgorithm: Certificate.SignatureAlgorithm?
    private let signatureBytes: [UInt8]

    /// Reads a list from PEM (`X509 CRL`) or DER bytes; `source` names it in errors.
    public init(bytes: [UInt8], source: String) throws(WharfError) {
        let der: [UInt8]
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN X509 CRL-----") {
            guard let document = try? PEMDocument(pemString: text), document.discriminator == "X509 CRL" else {
                throw Self.unreadable(source, "its PEM block is damaged")
            }
            der = document.derBytes
        } else {
            der = bytes
        }
        do {
            let root = try DER.parse(der)
            guard root.identifier == .sequence, case .constructed(let parts) = root.content else {
                throw Self.unreadable(source, "it is not a DER SEQUENCE")
            }
            var outer = parts.makeIterator()
            guard let tbs = outer.next(), let algorithm = outer.next(), let signature = outer.next(), outer.next() == nil,
                  tbs.identifier == .sequence, case .constructed(let fields) = tbs.content
            else { throw Self.unreadable(source, "it does not have the three parts of a CRL") }
            signedBytes = Array(tbs.encodedBytes)
            signatureAlgorithm = Self.algorithm(try Self.algorithmOID(algorithm))
            signatureBytes = Array(try ASN1BitString(derEncoded: signature).bytes)

            var fieldIterator = fields.makeIterator()
            var field = fieldIterator.next()
            if let version = field, version.identifier == .integer { field = fieldIterator.next() }  // v2
            guard field?.identifier == .sequence else { throw Self.unreadable(source, "it has no signature algorithm") }
            field = fieldIterator.next()
            guard let issuerNode = field else { throw Self.unreadable(source, "it has no issuer") }
            issuer = try DistinguishedName(derEncoded: issuerNode)
            field = fieldIterator.next()
            guard let thisUpdateNode = field, let thisUpdate = try Self.time(thisUpdateNode) else {
                throw Self.unreadable(source, "it has no thisUpdate time")
            }
            self.thisUpdate = thisUpdate
            field = fieldIterator.next()
            if let node = field, let nextUpdate = try Self.time(node) {
                self.nextUpdate = nextUpdate
                field = fieldIterator.next()
            } else {
                self.nextUpdate = nil
            }
            var serials: Set<String> = []
            if let list = field, list.identifier == .sequence, case .constructed(let entries) = list.content {
                for entry in entries {
                    guard case .constructed(let entryFields) = entry.content, let serial = entryFields.first(where: { _ in true }),
                          serial.identifier == .integer, case .primitive(let value) = serial.content
                    else { throw Self.unreadable(source, "a revoked entry has no serial number") }
                    serials.insert(Revocation.normalizedSerial(Hex.encode(Array(value))))
                }
            }
            self.serials = serials
        } catch let error as WharfError {
            throw error
        } catch {
            throw Self.unreadable(source, "\(error)")
        }
    }

    /// Reads the list in the file at `path`.
    public init(contentsOf path: String) throws(WharfError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WharfError(.fileSystem, "cannot read the CRL \(path)", fix: "check that the file exists and Wharf may read it")
        }
        try self.init(bytes: Array(data), source: path)
    }

    /// The first of `authorities` that signed this list, if one did.
    public func signer(among authorities: [Certificate]) -> Certificate? {
        guard let signatureAlgorithm else { return nil }
        return authorities.first { authority in
            authority.subject == issuer
                && authority.publicKey.isValidSignature(signatureBytes, for: signedBytes, signatureAlgorithm: signatureAlgorithm)
        }
    }

    /// Whether the list is past its next update at `now`.
    public func isStale(at now: Date) -> Bool {
        nextUpdate.map { now > $0 } ?? false
    }

    private static func unreadable(_ source: String, _ why: String) -> WharfError {
        WharfError.invalid(
            "\(source) is not a CRL Wharf can read: \(why)",
            fix: "give a CRL in PEM (-----BEGIN X509 CRL-----) or DER, as `openssl crl -in FILE -noout -text` reads it"
        )
    }

    private static func algorithmOID(_ node: ASN1Node) throws -> ASN1ObjectIdentifier {
        guard node.identifier == .sequence, case .constructed(let parts) = node.content, let oid = parts.first(where: { _ in true }) else {
            throw ASN1Error.invalidASN1Object(reason: "an AlgorithmIdentifier must be a SEQUENCE")
        }
        return try ASN1ObjectIdentifier(derEncoded: oid)
    }

    /// The signature algorithms Wharf verifies: ECDSA and RSA PKCS#1 v1.5 with SHA-2.
    private static func algorithm(_ oid: ASN1ObjectIdentifier) -> Certificate.SignatureAlgorithm? {
        let known: [(ASN1ObjectIdentifier, Certificate.SignatureAlgorithm)] = [
            ([1, 2, 840, 10045, 4, 3, 2], .ecdsaWithSHA256), ([1, 2, 840, 10045, 4, 3, 3], .ecdsaWithSHA384),
            ([1, 2, 840, 10045, 4, 3, 4], .ecdsaWithSHA512), ([1, 2, 840, 113549, 1, 1, 11], .sha256WithRSAEncryption),
            ([1, 2, 840, 113549, 1, 1, 12], .sha384WithRSAEncryption), ([1, 2, 840, 113549, 1, 1, 13], .sha512WithRSAEncryption),
        ]
        return known.first { $0.0 == oid }?.1
    }

    /// A UTCTime or GeneralizedTime node as a date; nil for a node of another kind.
    private static func time(_ node: ASN1Node) throws -> Date? {
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        if node.identifier == UTCTime.defaultIdentifier {
            let time = try UTCTime(derEncoded: node)
            (components.year, components.month, components.day) = (time.year, time.month, time.day)
            (components.hour, components.minute, components.second) = (time.hours, time.minutes, time.seconds)
        } else if node.identifier == GeneralizedTime.defaultIdentifier {
            let time = try GeneralizedTime(derEncoded: node)
            (components.year, components.month, components.day) = (time.year, time.month, time.day)
            (components.hour, components.minute, components.second) = (time.hours, time.minutes, time.seconds)
        } else {
            return nil
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: components)
    }
}
