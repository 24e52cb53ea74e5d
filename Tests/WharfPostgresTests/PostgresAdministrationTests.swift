import Foundation
import Testing
import WharfCore
import WharfStore
import WharfTestSupport
@testable import WharfPostgres

/// What the operator's commands read and change, on PostgreSQL: the same answers as the
/// SQLite registry gives for the same rows and the same changes.
@Suite struct PostgresAdministrationTests {
    /// Every read of `RegistryAdministration`, as text that compares whole.
    static func reads(_ store: any RegistryAdministration & ReceiptStore) throws -> [String: String] {
        let sortedCounts = { (counts: [String: [Transfer.State: Int]]) in
            counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.sorted { $0.key.rawValue < $1.key.rawValue })" }
        }
        return [
            "transfers": "\(try store.transfers(state: nil, partner: nil, limit: 100))",
            "delivered": "\(try store.transfers(state: .delivered, partner: "acme", limit: 100).map(\.id))",
            "attempts": "\(try store.transfers(limit: 100).map { try store.attempts(of: $0.id) })",
            "counts": "\(try store.transferCounts().sorted { $0.key.rawValue < $1.key.rawValue })",
            "countsByPartner": "\(sortedCounts(try store.transferCountsByPartner()))",
            "oldest": "\(try store.oldestWaitingByPartner()) \(String(describing: try store.oldestWaitingTransfer()?.id))",
            "lastUploads": "\(try store.lastUploads())",
            "schedules": "\(try store.schedules())",
            "hooks": "\(try store.hooks())",
            "hookEvents": "\(try store.hookEvents(hook: nil, partner: "acme", state: .pending, limit: 10))",
            "hookEventCounts": "\(try store.hookEventCounts())",
            "revokedSerials": "\(try store.revokedSerials().map { "\($0.serial) \($0.revokedAt)" })",
            "audit": "\(try store.auditEvents(AuditFilter(partner: "acme", kind: .admin), limit: 10))",
            "auditAll": "\(try store.auditEvents(AuditFilter(), limit: 100).map(\.id))",
            "auditHead": "\(try store.auditHead())",
            "pruning": "\(String(describing: try store.auditPruning()))",
        ]
    }

    /// The same changes, made through the port.
    static func change(_ store: any RegistryAdministration, at now: Date) throws {
        let acme = try PartnerName("acme")
        let schedule = try store.addSchedule(
            partner: acme, cron: try CronExpression(parsing: "*/5 * * * *"), sourceDirectory: "/srv/more", pattern: "*", keep: false,
            firstRun: now.addingTimeInterval(300)
        )
        #expect(schedule.id > 1)
        try store.removeSchedule(1)
        let hook = try store.addHook(event: .dead, partner: acme, action: .url("https://hooks.example/dead", caFile: nil), retry: Hook.defaultRetry, timeout: 3)
        try store.removeHook(hook.id - 1)
        try store.recordIssued(serial: "0c0d", fingerprint: PostgresInboxPortsTests.fingerprint, partner: acme, notAfter: now.addingTimeInterval(86_400))
        let admin = AuditEvent(at: now, kind: .admin, outcome: .changed, status: nil, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: "revoked by serial")
        let added = try store.revoke([Revocation(fingerprint: nil, serial: "0C0D", partner: "acme", revokedAt: now, reason: "superseded")], audit: admin)
        #expect(added.count == 1)
        #expect(try store.revoke([Revocation(fingerprint: nil, serial: "0C0D", partner: "acme", revokedAt: now, reason: "again")], audit: admin).isEmpty)
        let lifted = AuditEvent(at: now, kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil, fingerprint: nil, remoteAddress: "192.0.2.9", detail: "ban lifted")
        #expect(try store.liftBan("192.0.2.9", now: now, audit: lifted))
        #expect(try store.liftBan("192.0.2.9", now: now, audit: lifted) == false)
        _ = try store.update(acme) { partner throws(WharfError) in partner.displayName = "Acme Europe" }
        try store.setStatus(.disabled, of: acme)
    }

    @Test func readsAndChangesGiveWhatSQLiteGivesForTheSameRows() async throws {
        let registry = try PostgresCopyTests.populatedRegistry()
        let exported = try registry.exportForCopy()
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await onThread {
            let store = try PostgresStoreTests.open(server, node: "node-a")
            defer { store.close() }
            _ = try store.importCopy(exported)
            let sqlite = try Self.reads(registry)
            let postgres = try Self.reads(store)
            for key in sqlite.keys.sorted() { #expect(postgres[key] == sqlite[key], "\(key)") }
            #expect(sqlite["delivered"] != "[]" && sqlite["hookEvents"] != "[]" && sqlite["revokedSerials"] != "[]", "the fixture has rows to read")

            let now = Date().roundedToMilliseconds
            try Self.change(registry, at: now)
            try Self.change(store, at: now)
            let changedSQLite = try Self.reads(registry)
            let changedPostgres = try Self.reads(store)
            for key in changedSQLite.keys.sorted() { #expect(changedPostgres[key] == changedSQLite[key], "after the changes: \(key)") }
            #expect(try store.partner(named: try PartnerName("acme")) == (try registry.partner(named: try PartnerName("acme"))))
            #expect(changedSQLite["schedules"] != sqlite["schedules"] && changedSQLite["hooks"] != sqlite["hooks"])

            // Pruning keeps the chain verifiable, and records itself, on both.
            let cutoff = now.addingTimeInterval(1)
            let pruned = { (removed: Int) in
                AuditEvent(at: now, kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil, fingerprint: nil, remoteAddress: nil, detail: "pruned \(removed)")
            }
            let removed = try store.pruneAudit(before: cutoff, audit: pruned)
            #expect(removed > 0)
            #expect(removed == (try registry.pruneAudit(before: cutoff, audit: pruned)))
            #expect(try store.auditPruning()?.pruned == removed)
            let head = try store.auditHead()
            let sqliteHead = try registry.auditHead()
            #expect(head.count == 1 && head.count == sqliteHead.count)
            #expect(try store.verifyAudit(head: head.hash) == 1)
            let error = try #require(throws: WharfError.self) { try store.verifyAudit(head: String(repeating: "0", count: 64)) }
            #expect(error.problem.contains("not at the head"), "\(error)")
            #expect(try store.pruneAudit(before: now.addingTimeInterval(-3600), audit: pruned) == 0)

            // Refusals name what is missing and change nothing.
            let unknown = try #require(throws: WharfError.self) {
                try store.addSchedule(
                    partner: try PartnerName("nobody"), cron: try CronExpression(parsing: "0 * * * *"), sourceDirectory: "/x", pattern: "*",
                    keep: false, firstRun: now
                )
            }
            #expect(unknown.problem.contains("nobody"), "\(unknown)")
            #expect(throws: WharfError.self) { try store.removeSchedule(999) }
            #expect(throws: WharfError.self) { try store.removeHook(999) }
            #expect(try store.schedules().count == 1 && (try store.hooks()).count == 1)
            try store.ping()
            try store.checkIntegrity()
        }
    }
}
