/// The audit trail: every upload accepted or refused, every handshake that failed.
///
/// Blocking: call from a thread that may block.
public protocol AuditTrail: Sendable {
    /// Appends `event`; it is durable when this returns.
    func record(_ event: AuditEvent) throws(WharfError)

    /// Appends `events` in order, in one commit; durable when this returns.
    func record(contentsOf events: [AuditEvent]) throws(WharfError)

    /// The most recent events, newest first.
    func auditEvents(limit: Int) throws(WharfError) -> [AuditEvent]
}
