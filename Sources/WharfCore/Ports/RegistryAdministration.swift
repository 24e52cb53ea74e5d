import Foundation

/// What the operator's commands and a gateway's upkeep (gauges, readiness, the revocation
/// list, audit retention) read and change, beyond the ports the listener and the worker
/// use. Both stores implement it, so every command works on a home of either.
///
/// Blocking, like the other ports: call from a thread that may block.
public protocol RegistryAdministration: Sendable {
    /// Answers, or throws: whether the store can be reached now.
    func ping() throws(WharfError)
    /// Throws naming what is damaged, if the store can tell.
    func checkIntegrity() throws(WharfError)
    /// The names of the migrations applied, in order.
    func appliedMigrations() throws(WharfError) -> [String]

    // Partners.
    /// Every partner, by name.
    func partners() throws(WharfError) -> [Partner]
    func add(_ partner: Partner) throws(WharfError)
    /// Changes partner `name` with `change` in one transaction and returns it as stored.
    @discardableResult
    func update(_ name: PartnerName, _ change: @escaping @Sendable (inout Partner) throws(WharfError) -> Void) throws(WharfError) -> Partner
    func remove(_ name: PartnerName) throws(WharfError)

    // Transfers.
    /// Transfers, newest first, of one state or any, one partner or all.
    func transfers(state: Transfer.State?, partner: String?, limit: Int) throws(WharfError) -> [Transfer]
    func attempts(of transferID: String) throws(WharfError) -> [DeliveryAttempt]
    func transferCounts() throws(WharfError) -> [Transfer.State: Int]
    func transferCountsByPartner() throws(WharfError) -> [String: [Transfer.State: Int]]
    /// When each partner's oldest transfer still waiting was queued.
    func oldestWaitingByPartner() throws(WharfError) -> [String: Date]
    func oldestWaitingTransfer() throws(WharfError) -> Transfer?
    /// When each partner last uploaded.
    func lastUploads() throws(WharfError) -> [String: Date]

    // Schedules.
    func schedules() throws(WharfError) -> [Schedule]
    func addSchedule(
        partner: PartnerName, cron: CronExpression, sourceDirectory: String, pattern: String, keep: Bool, firstRun: Date
    ) throws(WharfError) -> Schedule
    func removeSchedule(_ id: Int64) throws(WharfError)

    // Hooks.
    func hooks() throws(WharfError) -> [Hook]
    func addHook(event: Hook.Event, partner: PartnerName?, action: Hook.Action, retry: RetryPolicy, timeout: Double) throws(WharfError) -> Hook
    func removeHook(_ id: Int64) throws(WharfError)
    func hookEvents(hook: Int64?, partner: String?, state: HookEvent.State?, limit: Int) throws(WharfError) -> [HookEvent]
    func hookEventCounts() throws(WharfError) -> [HookEvent.State: Int]

    // Certificates.
    /// Records `revocations` and `audit` in one transaction; returns those newly revoked.
    @discardableResult
    func revoke(_ revocations: [Revocation], audit: AuditEvent) throws(WharfError) -> [Revocation]
    /// The serials of revoked certificates Wharf's CA issued: what its CRL lists.
    func revokedSerials() throws(WharfError) -> [(serial: String, revokedAt: Date)]
    func recordIssued(serial: String, fingerprint: CertificateFingerprint, partner: PartnerName, notAfter: Date) throws(WharfError)

    // The audit trail.
    func auditEvents(_ filter: AuditFilter, limit: Int) throws(WharfError) -> [AuditEvent]
    /// Walks the chain; returns how many events it checked, or throws naming where it
    /// breaks. With `head`, the chain must end there.
    func verifyAudit(head: String?) throws(WharfError) -> Int
    /// How many events there are, and the latest hash (`""` when none).
    func auditHead() throws(WharfError) -> (count: Int, hash: String)
    /// How many events were pruned so far, and before when; `nil` if none was.
    func auditPruning() throws(WharfError) -> (pruned: Int, before: Date)?
    /// Removes events older than `cutoff`, keeping the chain verifiable, and records
    /// `audit(removed)`. Returns how many were removed.
    @discardableResult
    func pruneAudit(before cutoff: Date, audit: (Int) -> AuditEvent) throws(WharfError) -> Int

    /// Lifts the ban on `address` (recording `audit`); `false` if it was not banned.
    func liftBan(_ address: String, now: Date, audit: AuditEvent) throws(WharfError) -> Bool
}

extension RegistryAdministration {
    public func setStatus(_ status: Partner.Status, of name: PartnerName) throws(WharfError) {
        _ = try update(name) { partner throws(WharfError) in partner.status = status }
    }

    public func transfers(state: Transfer.State? = nil, partner: String? = nil, limit: Int = 100) throws(WharfError) -> [Transfer] {
        try transfers(state: state, partner: partner, limit: limit)
    }

    public func hookEvents(
        hook: Int64? = nil, partner: String? = nil, state: HookEvent.State? = nil, limit: Int = 100
    ) throws(WharfError) -> [HookEvent] {
        try hookEvents(hook: hook, partner: partner, state: state, limit: limit)
    }
}

/// Which audit events to list: each field given narrows the list.
public struct AuditFilter: Sendable {
    public var partner: String?
    public var since: Date?
    public var kind: AuditEvent.Kind?
    public var outcome: AuditEvent.Outcome?

    public init(partner: String? = nil, since: Date? = nil, kind: AuditEvent.Kind? = nil, outcome: AuditEvent.Outcome? = nil) {
        self.partner = partner
        self.since = since
        self.kind = kind
        self.outcome = outcome
    }
}
