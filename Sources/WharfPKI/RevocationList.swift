import Foundation
import SwiftASN1
import WharfCore
import X509

/// A certificate revocation list (RFC 5280 §5, version 2) signed by a CA: what a TLS
/// terminator in front of Wharf (nginx `ssl_crl`, HAProxy `crl-file`) or an auditor checks
/// a partner's certificate against.
///
/// It lists serials with their revocation time, and carries the CA's key identifier and a
/// CRL number (the time it was made, in milliseconds, so a later list has a larger number,
/// also when two are made within one second).
public struct RevocationList: Sendable {
    public struct Entry: Sendable, Equatable {
        /// Hex, as `Revocation.normalizedSerial` writes it.
        public let serial: String
        public let revokedAt: Date

        public init(serial: String, revokedAt: Date) {
            self.serial = serial
            self.revokedAt = revokedAt
        }
    }

    public let thisUpdate: Date
    public let nextUpdate: Date
    public let entries: [Entry]
    /// The DER encoding of the signed list.
    public let derBytes: [UInt8]

    /// How long a list is valid: partners' tools refuse one past its next update.
    public static let validity: TimeInterval = 7 * 86_400

    /// A list of `entries` signed by `authority`, valid from `now` for `validity`.
    public init(entries: [Entry], authority: CertificateAuthority, now: Date = Date(), validity: TimeInterval = Self.validity) throws(WharfError) {
        let madeAt = now
        // Whole seconds: the encoded times have no fractions.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let nextUpdate = now.addingTimeInterval(validity)
        let sorted = entries.sorted { $0.serial < $1.serial }
        self.thisUpdate = now
        self.nextUpdate = nextUpdate
        self.entries = sorted
        let key = authority.keyed.privateKey
        let algorithm: Certificate.SignatureAlgorithm = key.supportedSignatureAlgorithms.contains(.ecdsaWithSHA256) ? .ecdsaWithSHA256 : .sha256WithRSAEncryption
        do {
            var tbs = DER.Serializer()
            try tbs.appendConstructedNode(identifier: .sequence) { tbs in
                try tbs.serialize(1)  // v2
                try Self.serializeAlgorithm(algorithm, into: &tbs)
                try tbs.serialize(authority.certificate.subject)
                try Self.serializeTime(now, into: &tbs)
                try Self.serializeTime(nextUpdate, into: &tbs)
                if !sorted.isEmpty {
                    try tbs.appendConstructedNode(identifier: .sequence) { list in
                        for entry in sorted {
                            try list.appendConstructedNode(identifier: .sequence) { revoked in
                                try revoked.serialize(ArraySlice(Self.serialBytes(entry.serial)))
                                try Self.serializeTime(entry.revokedAt, into: &revoked)
                            }
                        }
                    }
                }
                try tbs.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { explicit in
                    try explicit.appendConstructedNode(identifier: .sequence) { extensions in
                        if let identifier = try authority.certificate.extensions.subjectKeyIdentifier?.keyIdentifier {
                            // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
                            var value = DER.Serializer()
                            value.appendConstructedNode(identifier: .sequence) { aki in
                                aki.appendPrimitiveNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { $0.append(contentsOf: identifier) }
                            }
                            try Self.serializeExtension([2, 5, 29, 35], value.serializedBytes, into: &extensions)
                        }
                        var number = DER.Serializer()
                        try number.serialize(Int((madeAt.timeIntervalSince1970 * 1000).rounded(.down)))
                        try Self.serializeExtension([2, 5, 29, 20], number.serializedBytes, into: &extensions)
                    }
                }
            }
            let tbsBytes = tbs.serializedBytes
            let signature = try key.sign(bytes: tbsBytes, signatureAlgorithm: algorithm)
            var list = DER.Serializer()
            try list.appendConstructedNode(identifier: .sequence) { list in
                list.serializeRawBytes(tbsBytes)
                try Self.serializeAlgorithm(algorithm, into: &list)
                try list.serialize(ASN1BitString(bytes: ArraySlice(signature.rawRepresentation)))
            }
            derBytes = list.serializedBytes
        } catch {
            throw .cryptography("cannot sign the revocation list: \(error)")
        }
    }

    /// PEM (`-----BEGIN X509 CRL-----`), ending in a newline.
    public var pemText: String {
        PEMDocument(type: "X509 CRL", derBytes: derBytes).pemString + "\n"
    }

    private static func serializeAlgorithm(_ algorithm: Certificate.SignatureAlgorithm, into serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { identifier in
            if algorithm == .ecdsaWithSHA256 {
                try identifier.serialize(ASN1ObjectIdentifier(arrayLiteral: 1, 2, 840, 10045, 4, 3, 2))
            } else {
                try identifier.serialize(ASN1ObjectIdentifier(arrayLiteral: 1, 2, 840, 113549, 1, 1, 11))
                try identifier.serialize(ASN1Null())
            }
        }
    }

    /// UTCTime until 2049, GeneralizedTime after, as RFC 5280 §5.1.2.4 asks.
    private static func serializeTime(_ date: Date, into serializer: inout DER.Serializer) throws {
        let parts = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
        let (year, month, day) = (parts.year!, parts.month!, parts.day!)
        let (hour, minute, second) = (parts.hour!, parts.minute!, parts.second!)
        if year < 2050 {
            try serializer.serialize(try UTCTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second))
        } else {
            try serializer.serialize(try GeneralizedTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second, fractionalSeconds: 0))
        }
    }

    private static func serializeExtension(_ oid: ASN1ObjectIdentifier, _ value: [UInt8], into serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { field in
            try field.serialize(oid)
            try field.serialize(ASN1OctetString(contentBytes: ArraySlice(value)))
        }
    }

    /// The content octets of a positive INTEGER for a hex serial: a leading zero byte when
    /// the first bit is set, none otherwise.
    static func serialBytes(_ hex: String) -> [UInt8] {
        let digits = hex.count % 2 == 1 ? "0" + hex : hex
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            bytes.append(UInt8(digits[index..<next], radix: 16) ?? 0)
            index = next
        }
        while bytes.count > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 { bytes.removeFirst() }
        if let first = bytes.first, first & 0x80 != 0 { bytes.insert(0, at: 0) }
        return bytes.isEmpty ? [0] : bytes
    }
}
