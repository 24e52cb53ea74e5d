import Foundation

/// The SHA-256 a sender declares in a `Content-Digest` header (RFC 9530):
/// `sha-256=:BASE64:`. Other algorithms in the same header are ignored.
public struct ContentDigest: Hashable, Sendable {
    /// The digest as lower-case hex.
    public let sha256Hex: String

    /// Parses the header; `nil` when it holds no `sha-256` member.
    public init?(header: String) throws(WharfError) {
        var found: String?
        for member in header.split(separator: ",") {
            let parts = member.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingWhitespace().lowercased() == "sha-256" else { continue }
            let value = parts[1].trimmingWhitespace()
            guard value.count >= 2, value.hasPrefix(":"), value.hasSuffix(":"),
                  let digest = Data(base64Encoded: String(value.dropFirst().dropLast())), digest.count == 32
            else {
                throw .invalid("the Content-Digest header is malformed", fix: "send sha-256=:BASE64: with the base64 SHA-256 of the body")
            }
            found = Hex.encode(digest)
        }
        guard let found else { return nil }
        sha256Hex = found
    }

    /// The header value for a digest given as raw bytes.
    public static func header(sha256 digest: some Sequence<UInt8>) -> String {
        "sha-256=:\(Data(digest).base64EncodedString()):"
    }
}
