import Foundation
import GRDB
import Testing
import WharfCore
@testable import WharfStore

/// Pruning the audit trail keeps what is left verifiable, and still catches an event
/// removed or changed among what is kept.
@Suite struct AuditRetentionTests {
    let registry: Registry
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    init() throws {
        registry = try Registry.create(at: scratchRegistryPath("retention"))
        // Ten events a day apart, the oldest ten days ago.
        try registry.record(contentsOf: (0..<10).map { day in
            AuditEvent(at: now.addingTimeInterval(Double(day - 10) * 86_400), outcome: .refused, status: 403, partner: nil,
                       subject: "CN=x", fingerprint: nil, remoteAddress: "192.0.2.1", detail: "event \(day)")
        })
    }

    func pruned(_ count: Int) -> AuditEvent {
        AuditEvent(at: now, kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil, fingerprint: nil,
                   remoteAddress: nil, detail: "\(count) removed", actor: "wharf serve", command: "audit retention")
    }

    @Test func whatIsKeptStillVerifiesAndThePruningIsAnEvent() throws {
        let headBefore = try registry.auditHead().hash
        #expect(try registry.pruneAudit(before: now.addingTimeInterval(-4.5 * 86_400), audit: pruned) == 6)
        let kept = try registry.auditEvents(limit: 100).reversed().map(\.detail)
        #expect(kept == ["event 6", "event 7", "event 8", "event 9", "6 removed"])
        #expect(try registry.verifyAudit() == 5)
        #expect(try registry.auditPruning()?.pruned == 6)
        // The pruning event follows the head kept before it.
        #expect(try registry.auditEvents(limit: 1).first?.previousHash == headBefore)
        // Nothing older left: a second pruning removes nothing and records nothing.
        #expect(try registry.pruneAudit(before: now.addingTimeInterval(-4.5 * 86_400), audit: pruned) == 0)
        #expect(try registry.verifyAudit() == 5)
    }

    @Test func removingMoreOfTheOldestEventsByHandStillBreaksTheChain() throws {
        try registry.pruneAudit(before: now.addingTimeInterval(-4.5 * 86_400), audit: pruned)
        try registry.write { db in try db.execute(sql: "DELETE FROM audit_event WHERE detail = 'event 6'") }
        #expect(throws: WharfError.self) { try registry.verifyAudit() }
    }

    @Test func aTrailPrunedToNothingGoesOnFromTheLastHashRemoved() throws {
        let removed = try registry.pruneAudit(before: now.addingTimeInterval(86_400)) { _ in
            AuditEvent(at: now.addingTimeInterval(2 * 86_400), kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil,
                       fingerprint: nil, remoteAddress: nil, detail: "all removed", actor: "wharf serve", command: "audit retention")
        }
        #expect(removed == 10)
        // The pruning event was newer than the cutoff, so it is what is left; then prune that too.
        try registry.pruneAudit(before: now.addingTimeInterval(3 * 86_400), audit: pruned)
        #expect(try registry.auditEvents(limit: 10).map(\.detail) == ["1 removed"])
        try registry.record(AuditEvent(outcome: .accepted, status: 201, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: "later"))
        #expect(try registry.verifyAudit() == 2)
        #expect(try registry.verifyAudit(head: try registry.auditHead().hash) == 2)
    }
}

@Suite struct AddressBanStoreTests {
    @Test func bansAreStoredReplacedAndLiftedWithTheirAuditEvent() throws {
        let registry = try Registry.create(at: scratchRegistryPath("bans"))
        let now = Date()
        let ban = AddressBan(address: "192.0.2.7", since: now, until: now.addingTimeInterval(1800), times: 1, reason: "handshake_refused")
        try registry.saveBan(ban)
        var second = AddressBan(address: "192.0.2.7", since: now.addingTimeInterval(1), until: now.addingTimeInterval(2700), times: 2, reason: "unknown_partner")
        try registry.saveBan(second)
        #expect(try registry.addressBans().map(\.times) == [2])
        let event = AuditEvent(kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil, fingerprint: nil,
                               remoteAddress: "192.0.2.7", detail: "lifted", actor: "test", command: "defender unban")
        #expect(try registry.liftBan("192.0.2.7", now: now.addingTimeInterval(2), audit: event))
        second = try #require(try registry.addressBans().first)
        #expect(second.times == 0 && !second.isActive(at: now.addingTimeInterval(3)))
        #expect(try registry.auditEvents(limit: 1).first?.detail == "lifted")
        // Lifting again: not banned, and nothing recorded.
        #expect(try !registry.liftBan("192.0.2.7", now: now.addingTimeInterval(3), audit: event))
        #expect(try registry.auditEvents(limit: 10).count == 1)
    }
}
