#if canImport(Glibc)
import Glibc
#endif
import WharfCore
import WharfStore

/// Records a change an operator made with the CLI in the audit trail: when, which OS user,
/// which command, which partner or object, and what changed in words (never a key, a
/// password or a certificate's content).
///
/// It is written once the change is committed: if that write fails, the change stands and
/// a warning says it is missing from the trail.
enum OperatorAudit {
    static func record(_ registry: any AuditTrail, _ command: String, partner: String? = nil, _ detail: String) {
        do {
            try registry.record(AuditEvent(
                kind: .admin, outcome: .changed, status: nil, partner: partner, subject: nil, fingerprint: nil,
                remoteAddress: nil, detail: detail, actor: user, command: command
            ))
        } catch {
            Console.error("wharf: warning: done, but the audit trail could not record it: \(error)")
        }
    }

    /// The user running the command: their login name, else `uid N`.
    static var user: String {
        let uid = geteuid()
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }
}
