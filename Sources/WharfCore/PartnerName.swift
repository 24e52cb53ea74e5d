/// A partner's name: a slug of 1 to 63 characters, `[a-z0-9][a-z0-9-]{0,62}`.
///
/// It is safe to use as a directory name and in a URL path, which is where it ends up
/// (`partners/NAME/`, `spool/inbox/NAME/`).
public struct PartnerName: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(WharfError) {
        let bytes = Array(rawValue.utf8)
        func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        guard let first = bytes.first, bytes.count <= 63, isLowerAlphanumeric(first),
              bytes.allSatisfy({ isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") })
        else {
            throw .invalid(
                "'\(rawValue)' is not a valid partner name",
                fix: "use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit (for example 'acme-eu')"
            )
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: PartnerName, rhs: PartnerName) -> Bool { lhs.rawValue < rhs.rawValue }
}
