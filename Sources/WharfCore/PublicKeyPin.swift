import Foundation

/// A public-key pin in curl's form: `sha256//` and the base64 SHA-256 of the server's
/// SubjectPublicKeyInfo. A partner may have several (the current key and the next).
public struct PublicKeyPin: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(parsing text: String) throws(WharfError) {
        let trimmed = String(text.trimmingWhitespace())
        let prefix = "sha256//"
        guard trimmed.hasPrefix(prefix),
              let digest = Data(base64Encoded: String(trimmed.dropFirst(prefix.count))),
              digest.count == 32
        else {
            throw .invalid(
                "'\(text)' is not a public-key pin",
                fix: "write it as sha256// followed by the base64 SHA-256 of the key (`wharf partner test` prints the server's)"
            )
        }
        self.rawValue = trimmed
    }

    /// The pin of a SubjectPublicKeyInfo whose SHA-256 digest is `digest`.
    public init(spkiDigest digest: some Sequence<UInt8>) {
        self.rawValue = "sha256//" + Data(digest).base64EncodedString()
    }

    public var description: String { rawValue }
}
