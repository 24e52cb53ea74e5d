import Foundation

/// The HTTPS base URL files are delivered to; a delivery appends `/FILENAME`.
public struct OutboundURL: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(parsing text: String) throws(WharfError) {
        let trimmed = String(text.trimmingWhitespace())
        guard let components = URLComponents(string: trimmed),
              components.scheme?.lowercased() == "https",
              let host = components.host, !host.isEmpty,
              components.user == nil, components.password == nil,
              components.query == nil, components.fragment == nil
        else {
            throw .invalid(
                "'\(text)' is not a delivery URL",
                fix: "give an https:// URL with a host and no credentials or query, for example https://files.acme.example/inbox"
            )
        }
        var normalized = trimmed
        while normalized.hasSuffix("/") { normalized.removeLast() }
        self.rawValue = normalized
    }

    public var description: String { rawValue }
}
