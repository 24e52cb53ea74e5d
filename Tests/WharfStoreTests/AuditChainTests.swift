import Foundation
import GRDB
import Testing
import WharfCore
@testable import WharfStore

@Suite struct AuditChainTests {
    let registry: Registry

    init() throws {
        registry = try Registry.create(at: scratchRegistryPath("audit"))
        for index in 1...5 {
            try registry.record(AuditEvent(
                outcome: index.isMultiple(of: 2) ? .refused : .accepted, status: 201, partner: "acme", subject: "CN=acme",
                fingerprint: nil, remoteAddress: "127.0.0.1:1", detail: "event \(index)"
            ))
        }
    }

    func tamper(_ sql: String) throws {
        try registry.write { db in try db.execute(sql: sql) }
    }

    func breakage() -> String? {
        do {
            _ = try registry.verifyAudit()
            return nil
        } catch {
            return error.problem
        }
    }

    @Test func anUntouchedTrailVerifiesAndEachEventIsChainedToTheOneBefore() throws {
        #expect(try registry.verifyAudit() == 5)
        let events = try registry.auditEvents(limit: 10).reversed().map { $0 }
        for (earlier, later) in zip(events, events.dropFirst()) {
            #expect(later.previousHash == earlier.hash)
        }
        #expect(events.first?.previousHash == "")
        #expect(try registry.verifyAudit(head: try registry.auditHead().hash) == 5)
    }

    @Test func anEditedEventIsNamed() throws {
        try tamper("UPDATE audit_event SET detail = 'nothing happened' WHERE id = 3")
        #expect(breakage() == "the audit trail is broken at event 3: its content is not what was recorded")
    }

    @Test func aDeletedOrMovedEventBreaksTheChainAtTheNextOne() throws {
        try tamper("DELETE FROM audit_event WHERE id = 2")
        #expect(breakage()?.hasPrefix("the audit trail is broken at event 3: an event before it was removed") == true)
    }

    @Test func aMovedEventBreaksTheChain() throws {
        try tamper("UPDATE audit_event SET id = 100 WHERE id = 2")
        #expect(breakage()?.hasPrefix("the audit trail is broken at event 3") == true)
    }

    @Test func anEventRemovedFromTheEndShowsAgainstTheKeptHead() throws {
        let head = try registry.auditHead().hash
        try tamper("DELETE FROM audit_event WHERE id = 5")
        #expect(try registry.verifyAudit() == 4, "the chain itself is whole")
        #expect(throws: WharfError.self) { try registry.verifyAudit(head: head) }
    }

    @Test func eventsAreFilteredByPartnerKindOutcomeAndTime() throws {
        try registry.record(AuditEvent(
            kind: .admin, outcome: .changed, status: nil, partner: "beta", subject: nil, fingerprint: nil,
            remoteAddress: nil, detail: "status disabled", actor: "ops", command: "partner disable"
        ))
        let admin = try registry.auditEvents(AuditFilter(kind: .admin))
        #expect(admin.count == 1 && admin[0].actor == "ops" && admin[0].command == "partner disable")
        #expect(try registry.auditEvents(AuditFilter(partner: "acme", outcome: .refused)).count == 2)
        #expect(try registry.auditEvents(AuditFilter(kind: .refusal)).count == 2)
        #expect(try registry.auditEvents(AuditFilter(since: Date().addingTimeInterval(60))).isEmpty)
    }
}

@Suite struct AuditChainMigrationTests {
    @Test func eventsOfAnEarlierVersionAreChainedInTheirOrderByTheUpgrade() throws {
        let path = try scratchRegistryPath("audit-upgrade")
        let queue = try DatabaseQueue(path: path)
        try Migrations.migrator.migrate(queue, upTo: "v8-attempt-counts-and-unsent-attempts")
        try queue.write { db in
            for (index, outcome) in ["accepted", "refused", "replayed"].enumerated() {
                try db.execute(
                    sql: "INSERT INTO audit_event (at, outcome, status, partner, detail) VALUES (?, ?, 201, 'acme', ?)",
                    arguments: ["2026-11-0\(index + 1) 10:00:00.000", outcome, "old \(index)"]
                )
            }
        }
        try queue.close()

        let registry = try Registry.open(at: path)
        #expect(try registry.verifyAudit() == 3)
        let events = try registry.auditEvents(limit: 10)
        #expect(events.map(\.kind) == [.upload, .refusal, .upload])
        #expect(events.map(\.detail) == ["old 2", "old 1", "old 0"])
        try registry.record(AuditEvent(outcome: .accepted, status: 201, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: "new"))
        #expect(try registry.verifyAudit() == 4, "new events continue the chain")
    }
}
