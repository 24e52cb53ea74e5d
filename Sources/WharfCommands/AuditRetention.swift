import Foundation
import Logging
import ServiceLifecycle
import WharfCore
import WharfStore

/// Removes audit events older than the retention (`--audit-retention-days`): when the
/// gateway starts, then once a day. What is kept still verifies (see `RegistryAdministration.pruneAudit`);
/// the pruning is itself an audit event.
struct AuditRetention: Service {
    let store: any HomeStore
    let days: Int
    let logger: Logger
    var interval: Duration = .seconds(86_400)

    func run() async throws {
        let retention = self
        await repeatUntilShutdown(every: interval) { retention.prune(at: Date()) }
    }

    /// Removes what is older than the retention at `now`; returns how many events.
    @discardableResult
    func prune(at now: Date) -> Int {
        let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
        do {
            let removed = try store.pruneAudit(before: cutoff) { removed in
                AuditEvent(
                    at: now, kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil, fingerprint: nil, remoteAddress: nil,
                    detail: "\(removed) audit events older than \(days) days removed (before \(cutoff.utcTimestamp()))",
                    actor: "wharf serve", command: "audit retention"
                )
            }
            if removed > 0 {
                logger.info("old audit events removed", metadata: ["count": "\(removed)", "before": "\(cutoff.utcTimestamp())"])
            }
            return removed
        } catch {
            logger.error("old audit events could not be removed", metadata: ["error": "\(error)"])
            return 0
        }
    }
}
