/// The SHA-256 digest of a certificate's DER encoding, as lower-case hex without separators.
///
/// Parsing accepts what operators copy from tools: plain hex, colon-separated hex in either
/// case, and OpenSSL's `sha256 Fingerprint=AB:CD:…` line.
public struct CertificateFingerprint: Hashable, Sendable, CustomStringConvertible {
    public let hex: String

    public init(parsing text: String) throws(WharfError) {
        var candidate = Substring(text.trimmingWhitespace())
        if let equals = candidate.lastIndex(of: "="), candidate.lowercased().contains("fingerprint") {
            candidate = candidate[candidate.index(after: equals)...]
        }
        if candidate.lowercased().hasPrefix("sha256:") { candidate = candidate.dropFirst(7) }
        let digits = candidate.filter { $0 != ":" }.lowercased()
        guard digits.count == 64, digits.allSatisfy({ $0.isHexDigit }) else {
            throw .invalid(
                "'\(text)' is not a SHA-256 certificate fingerprint",
                fix: "give 64 hex digits, with or without colons, as `openssl x509 -noout -fingerprint -sha256 -in CERT` prints them"
            )
        }
        self.hex = digits
    }

    /// Creates the fingerprint of a digest computed elsewhere.
    public init(digest: some Sequence<UInt8>) {
        self.hex = Hex.encode(digest)
    }

    public var description: String { hex }

    /// The colon-separated upper-case form OpenSSL and keytool print (accepted as input;
    /// Wharf itself prints `hex`).
    public var colonSeparated: String {
        stride(from: 0, to: hex.count, by: 2).map { offset -> String in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return hex[start..<hex.index(start, offsetBy: 2)].uppercased()
        }.joined(separator: ":")
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> SubSequence {
        let start = firstIndex(where: { !$0.isWhitespace }) ?? endIndex
        let end = lastIndex(where: { !$0.isWhitespace }).map { index(after: $0) } ?? start
        return self[start..<end]
    }
}
