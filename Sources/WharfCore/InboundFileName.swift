/// The name a partner gives an uploaded file, checked before anything is written.
///
/// Refused: empty, `.` and `..`, `/`, `\`, NUL and other control characters, and names
/// over 255 bytes of UTF-8.
public struct InboundFileName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(WharfError) {
        let problem: String? =
            if rawValue.isEmpty { "the file name is empty" }
            else if rawValue == "." || rawValue == ".." { "'\(rawValue)' is not a file name" }
            else if rawValue.utf8.count > 255 { "the file name is longer than 255 bytes" }
            else if rawValue.contains("/") || rawValue.contains("\\") { "the file name contains a path separator" }
            else if rawValue.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f || (0x80...0x9f).contains($0.value) }) {
                "the file name contains a control character"
            } else { nil }
        if let problem {
            throw .invalid(problem, fix: "name the file with printable characters, without / or \\, in at most 255 bytes")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}
