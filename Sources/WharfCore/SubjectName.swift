/// A distinguished name, normalised so that the ways tools print one compare equal.
///
/// OpenSSL prints `C = US, O = Acme, CN = x` (most significant first), RFC 4514 writes
/// `CN=x,O=Acme,C=US` (least significant first) and older tools `/C=US/O=Acme/CN=x`. All
/// three parse to the same `SubjectName`. Attribute types are mapped to their short names
/// (or dotted OIDs), values are trimmed, runs of spaces collapsed and compared without case
/// (RFC 5280's caseIgnoreMatch), and attributes are put in one conventional order, so the
/// order a tool printed them in does not matter.
public struct SubjectName: Hashable, Sendable, CustomStringConvertible {
    /// One attribute: a short type name such as `CN` (or a dotted OID) and its value.
    public struct Attribute: Hashable, Sendable {
        public let type: String
        public let value: String
    }

    /// The attributes in canonical order.
    public let attributes: [Attribute]

    /// The RFC 4514 form in canonical order, keeping the values' case: for display.
    public var description: String {
        attributes.map { "\($0.type)=\(Self.escape($0.value))" }.joined(separator: ",")
    }

    /// The form identities are matched and stored by: `description` without case.
    public var matchKey: String { description.lowercased() }

    /// Builds a name from attributes read out of a certificate, as (OID or type, value) pairs.
    public init(attributes pairs: [(type: String, value: String)]) throws(WharfError) {
        var attributes: [Attribute] = []
        for pair in pairs {
            guard let type = Self.canonicalType(pair.type) else {
                throw .invalid("'\(pair.type)' is not a distinguished-name attribute type")
            }
            let value = Self.collapseSpaces(pair.value)
            guard !value.isEmpty else {
                throw .invalid("the attribute \(type) has an empty value")
            }
            attributes.append(Attribute(type: type, value: value))
        }
        guard !attributes.isEmpty else {
            throw .invalid("a distinguished name needs at least one attribute")
        }
        self.attributes = attributes.sorted { lhs, rhs in
            let (lhsRank, rhsRank) = (Self.rank(of: lhs.type), Self.rank(of: rhs.type))
            if lhsRank != rhsRank { return lhsRank < rhsRank }
            if lhs.type != rhs.type { return lhs.type < rhs.type }
            return lhs.value.lowercased() < rhs.value.lowercased()
        }
    }

    /// Parses a name as OpenSSL, RFC 4514 or slash-separated text writes it.
    public init(parsing text: String) throws(WharfError) {
        let malformed = WharfError.invalid(
            "'\(text)' is not a distinguished name",
            fix: "write it as RFC 4514 (CN=acme,O=Acme Corp,C=US) or as OpenSSL prints it (C = US, O = Acme Corp, CN = acme)"
        )
        let trimmed = String(text.trimmingWhitespace())
        let pairs: [(type: String, value: String)]
        do {
            pairs = trimmed.hasPrefix("/")
                ? try Self.split(trimmed.dropFirst(), separators: ["/", "+"])
                : try Self.split(Substring(trimmed), separators: [",", ";", "+"])
        } catch {
            throw malformed
        }
        do {
            try self.init(attributes: pairs)
        } catch {
            throw WharfError.invalid("'\(text)' is not a distinguished name: \(error.problem)", fix: malformed.fix)
        }
    }

    private struct SyntaxError: Error {}

    /// Splits `type=value` pairs at unescaped, unquoted separators, undoing escapes.
    private static func split(_ text: Substring, separators: Set<Character>) throws -> [(type: String, value: String)] {
        var pairs: [(type: String, value: String)] = []
        var type = ""
        var value = ""
        var inValue = false
        var quoted = false
        var hexPending: [UInt8] = []
        var valueBytes: [UInt8] = []

        func flushHex() {
            valueBytes += hexPending
            hexPending.removeAll()
        }
        func finishPair() throws {
            flushHex()
            value += String(decoding: valueBytes, as: UTF8.self)
            valueBytes.removeAll()
            let cleanType = String(type.trimmingWhitespace())
            guard inValue, !cleanType.isEmpty else { throw SyntaxError() }
            pairs.append((cleanType, String(value.trimmingWhitespace())))
            type = ""
            value = ""
            inValue = false
        }

        var characters = text.makeIterator()
        while let character = characters.next() {
            if !inValue {
                if character == "=" {
                    inValue = true
                } else if separators.contains(character) {
                    throw SyntaxError()
                } else {
                    type.append(character)
                }
                continue
            }
            if quoted {
                if character == "\"" { quoted = false } else { flushHex(); valueBytes += Array(String(character).utf8) }
                continue
            }
            switch character {
            case "\\":
                guard let next = characters.next() else { throw SyntaxError() }
                if next.isHexDigit, let low = characters.next(), low.isHexDigit,
                   let byte = UInt8(String([next, low]), radix: 16) {
                    hexPending.append(byte)
                } else if next.isHexDigit {
                    throw SyntaxError()
                } else {
                    flushHex()
                    valueBytes += Array(String(next).utf8)
                }
            case "\"" where valueBytes.allSatisfy({ $0 == UInt8(ascii: " ") }) && hexPending.isEmpty:
                valueBytes.removeAll()
                quoted = true
            case _ where separators.contains(character):
                try finishPair()
            default:
                flushHex()
                valueBytes += Array(String(character).utf8)
            }
        }
        guard !quoted else { throw SyntaxError() }
        if inValue || !type.trimmingWhitespace().isEmpty { try finishPair() }
        return pairs
    }

    private static func collapseSpaces(_ value: String) -> String {
        value.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    private static func escape(_ value: String) -> String {
        var escaped = ""
        for (offset, character) in value.enumerated() {
            if ",+\"\\<>;=".contains(character) || (offset == 0 && (character == "#" || character == " ")) {
                escaped.append("\\")
            }
            escaped.append(character)
        }
        return escaped
    }

    /// Known attribute types: canonical short name, OID, accepted aliases (lower-case).
    private static let knownTypes: [(name: String, oid: String, aliases: [String])] = [
        ("CN", "2.5.4.3", ["cn", "commonname"]),
        ("UID", "0.9.2342.19200300.100.1.1", ["uid", "userid"]),
        ("emailAddress", "1.2.840.113549.1.9.1", ["emailaddress", "email", "e"]),
        ("serialNumber", "2.5.4.5", ["serialnumber"]),
        ("title", "2.5.4.12", ["title"]),
        ("GN", "2.5.4.42", ["gn", "givenname"]),
        ("SN", "2.5.4.4", ["sn", "surname"]),
        ("initials", "2.5.4.43", ["initials"]),
        ("pseudonym", "2.5.4.65", ["pseudonym"]),
        ("OU", "2.5.4.11", ["ou", "organizationalunitname"]),
        ("O", "2.5.4.10", ["o", "organizationname"]),
        ("organizationIdentifier", "2.5.4.97", ["organizationidentifier"]),
        ("STREET", "2.5.4.9", ["street", "streetaddress"]),
        ("postalCode", "2.5.4.17", ["postalcode"]),
        ("L", "2.5.4.7", ["l", "localityname"]),
        ("ST", "2.5.4.8", ["st", "s", "stateorprovincename"]),
        ("C", "2.5.4.6", ["c", "countryname"]),
        ("DC", "0.9.2342.19200300.100.1.25", ["dc", "domaincomponent"]),
    ]

    private static func canonicalType(_ raw: String) -> String? {
        var lowered = raw.trimmingWhitespace().lowercased()
        if lowered.hasPrefix("oid.") { lowered.removeFirst(4) }
        if let known = knownTypes.first(where: { $0.aliases.contains(lowered) || $0.oid == lowered }) {
            return known.name
        }
        let arcs = lowered.split(separator: ".", omittingEmptySubsequences: false)
        guard arcs.count >= 2, arcs.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return nil }
        return lowered
    }

    private static func rank(of type: String) -> Int {
        knownTypes.firstIndex(where: { $0.name == type }) ?? 1
    }
}
