import Crypto

/// The audit trail's hash chain arithmetic, shared by every store: each event stores the
/// SHA-256 of the event before it and of that hash with its own canonical content, so an
/// event changed, deleted or moved breaks the chain where it was.
public enum AuditChain {
    /// An event's content in one fixed form: a JSON array of its fields in a fixed order,
    /// its time as stored.
    public static func canonical(_ event: AuditEvent, at: String) -> String {
        let fields: [String?] = [
            at, event.kind.rawValue, event.outcome.rawValue, event.status.map(String.init), event.partner, event.subject,
            event.fingerprint, event.remoteAddress, event.detail, event.actor, event.command,
        ]
        return "[" + fields.map { $0.map(EscapedText.json) ?? "null" }.joined(separator: ",") + "]"
    }

    /// SHA-256, in hex, of the previous event's hash, a newline, and the canonical content.
    public static func hash(previous: String, canonical: String) -> String {
        Hex.encode(SHA256.hash(data: Array((previous + "\n" + canonical).utf8)))
    }
}
