import Foundation
import Testing
import WharfCore
import WharfStore
import WharfTestSupport
@testable import WharfPostgres

/// A SQLite home's registry copied into an empty PostgreSQL database, row for row.
@Suite struct PostgresCopyTests {
    /// A registry with something in every table a copy moves.
    static func populatedRegistry() throws -> Registry {
        let directory = try TemporaryDirectory("wharf-copy")
        let registry = try Registry.create(at: directory.file("wharf.sqlite"))
        var acme = try PostgresInboxPortsTests.partner("acme")
        acme.outbound.pins = [try PublicKeyPin(parsing: "sha256//" + Data(repeating: 7, count: 32).base64EncodedString())]
        try registry.add(acme)
        _ = try registry.addHook(event: .received, partner: nil, action: .exec(["/bin/true"]), retry: Hook.defaultRetry, timeout: 5)
        for index in 0..<5 {
            _ = try registry.commit(
                PostgresInboxPortsTests.receipt("r\(index)", key: "k\(index)"), audit: PostgresInboxPortsTests.audit, install: {}
            )
        }
        let schedule = try registry.addSchedule(
            partner: try PartnerName("acme"), cron: try CronExpression(parsing: "0 6 * * *"), sourceDirectory: "/srv/out", pattern: "*.csv",
            keep: true, firstRun: Date().addingTimeInterval(3600)
        )
        for index in 0..<4 {
            let transfer = Transfer(id: "t\(index)", partner: "acme", filename: "out\(index).csv", size: 3, sha256: String(repeating: "b", count: 64))
            try registry.enqueue(transfer, sentBy: index == 3 ? (schedule.id, "/srv/out/out3.csv") : nil, install: {})
        }
        let claimed = try registry.claimDue(now: Date().addingTimeInterval(1), defaultPerPartner: 2, limit: 2).transfers
        for transfer in claimed {
            try registry.finish(
                transfer, attempt: PostgresTransferQueueTests.attempt(transfer, at: Date()), outcome: .delivered(receipt: "{\"id\":1}"),
                claimingNext: nil, install: {}
            )
        }
        try registry.saveBan(AddressBan(address: "192.0.2.9", since: Date(), until: Date().addingTimeInterval(600), times: 1, reason: "probing"))
        try registry.recordIssued(serial: "0A1B", fingerprint: PostgresInboxPortsTests.fingerprint, partner: try PartnerName("acme"), notAfter: Date().addingTimeInterval(86_400))
        try registry.revoke(
            [Revocation(fingerprint: PostgresInboxPortsTests.fingerprint, serial: "0A1B", partner: "acme", revokedAt: Date(), reason: "key lost")],
            audit: AuditEvent(kind: .admin, outcome: .changed, status: nil, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: "revoked")
        )
        try registry.createPartialUpload(PartialUpload(id: "p1", partner: "acme", filename: "big", length: 10, sha256: nil, idempotencyKey: nil, createdAt: Date()))
        return registry
    }

    @Test func everyRowOfAPopulatedSQLiteRegistryArrivesAndTheAuditChainStillHolds() async throws {
        let registry = try Self.populatedRegistry()
        let exported = try registry.exportForCopy()
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await onThread {
            let store = try PostgresStoreTests.open(server, node: "node-a")
            defer { store.close() }
            let counts = try store.importCopy(exported)
            for table in exported {
                #expect(counts[table.table] == table.rows.count, "\(table.table)")
            }
            let empty = exported.filter { $0.rows.isEmpty }.map(\.table)
            #expect(empty == ["audit_anchor"], "the fixture fills every table but the pruning anchor")
            // Read back through the ports, as a gateway on PostgreSQL would.
            #expect(try store.partner(named: try PartnerName("acme")) == (try registry.partner(named: try PartnerName("acme"))))
            #expect(try store.receipts(partner: "acme", limit: 10) == (try registry.receipts(partner: "acme", limit: 10)))
            #expect(try store.transfers(ids: ["t0", "t1", "t2", "t3"]) == (try registry.transfers(ids: ["t0", "t1", "t2", "t3"])))
            #expect(try store.revocations() == (try registry.revocations()))
            #expect(try store.verifyAudit() == (try registry.verifyAudit()), "the chain's hashes hold on PostgreSQL")
            // New rows continue the ids, and the chain.
            try store.record(AuditEvent(kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil, fingerprint: nil, remoteAddress: nil, detail: "after the copy"))
            #expect(try store.verifyAudit() == (try registry.verifyAudit()) + 1)
            // Copying again is refused, and changes nothing.
            let error = try #require(throws: WharfError.self) { try store.importCopy(exported) }
            #expect(error.code == .conflict)
            #expect(error.problem.contains("not empty"), "\(error)")
            #expect(try server.psql("SELECT count(*) FROM receipt") == "5")
        }
    }

    @Test func aCopyThatFailsPartWayLeavesTheDatabaseEmpty() async throws {
        let registry = try Self.populatedRegistry()
        var exported = try registry.exportForCopy()
        let transfers = try #require(exported.firstIndex { $0.table == "transfer" })
        let created = try #require(exported[transfers].columns.firstIndex(of: "created_at"))
        exported[transfers].rows[1][created] = .text("yesterday")
        let broken = exported
        let server = try await PostgresTransferQueueTests.migratedServer()
        try await onThread {
            let store = try PostgresStoreTests.open(server, node: "node-a")
            defer { store.close() }
            let error = try #require(throws: WharfError.self) { try store.importCopy(broken) }
            #expect(error.problem.contains("transfer.created_at"), "\(error)")
            #expect(error.problem.contains("yesterday"), "\(error)")
            #expect(try server.psql("SELECT (SELECT count(*) FROM partner) + (SELECT count(*) FROM receipt) + (SELECT count(*) FROM transfer)") == "0")
        }
    }
}
