import Foundation
import GRDB
import WharfCore

extension Registry: ReceiptStore {
    /// See `ReceiptStore.commit`.
    public func commit(
        _ receipt: Receipt, whilePartnersAt partners: Int64?, audit: (ReceiptCommit) -> AuditEvent, install: () throws -> Void
    ) throws(WharfError) -> ReceiptCommit? {
        try CommitThenInstall.run(
            commit: { () throws(WharfError) -> ReceiptCommit? in
                try write { db in
                    if let partners, try Self.partnerGeneration(db) != partners { return nil }
                    if let key = receipt.idempotencyKey,
                       let earlier = try Self.fetchReceipt(
                           db, sql: "SELECT * FROM receipt WHERE partner = ? AND idempotency_key = ?", [receipt.partner, key]
                       ) {
                        let outcome: ReceiptCommit = earlier.sha256 == receipt.sha256 && earlier.size == receipt.size
                            ? .replay(earlier) : .conflict(earlier)
                        try Self.insert(audit(outcome), db)
                        return outcome
                    }
                    try db.cachedStatement(sql: """
                            INSERT INTO receipt (id, partner, filename, stored_name, size, sha256, received_at, idempotency_key, signature)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """).execute(
                        arguments: [receipt.id, receipt.partner, receipt.filename, receipt.storedName, receipt.size,
                                    receipt.sha256, receipt.receivedAt.stored, receipt.idempotencyKey, receipt.signature]
                    )
                    try Self.insert(audit(.committed(receipt)), db)
                    try Self.queueHookEvents(received: receipt, db)
                    return .committed(receipt)
                }
            },
            install: { outcome in if case .committed? = outcome { try install() } },
            withdraw: { outcome in
                guard let outcome else { return }
                try write { db in
                    try db.execute(sql: "DELETE FROM receipt WHERE id = ?", arguments: [receipt.id])
                    try db.execute(sql: "DELETE FROM hook_event WHERE event = 'received' AND subject_id = ?", arguments: [receipt.id])
                    let accepted = audit(outcome)
                    try Self.insert(AuditEvent(
                        outcome: .refused, status: nil, partner: accepted.partner, subject: accepted.subject,
                        fingerprint: accepted.fingerprint, remoteAddress: accepted.remoteAddress,
                        detail: "receipt \(receipt.id) withdrawn: the file could not be moved into the inbox"
                    ), db)
                }
            }
        )
    }

    /// The receipt with this id.
    public func receipt(id: String) throws(WharfError) -> Receipt? {
        try read { db in try Self.fetchReceipt(db, sql: "SELECT * FROM receipt WHERE id = ?", [id]) }
    }

    /// The most recent receipts, newest first, of one partner or of all.
    public func receipts(partner: String? = nil, limit: Int = 100) throws(WharfError) -> [Receipt] {
        try read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT * FROM receipt WHERE (?1 IS NULL OR partner = ?1) ORDER BY received_at DESC, id DESC LIMIT ?2",
                arguments: [partner, limit]
            )
            return rows.map(Self.receipt(from:))
        }
    }

    /// When each partner's latest upload arrived, by partner name.
    public func lastUploads() throws(WharfError) -> [String: Date] {
        try read { db in
            var last: [String: Date] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT partner, max(received_at) AS at FROM receipt GROUP BY partner") {
                last[row["partner"]] = row.date("at")
            }
            return last
        }
    }

    private static func fetchReceipt(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> Receipt? {
        try Row.fetchOne(db, sql: sql, arguments: arguments).map(receipt(from:))
    }

    private static func receipt(from row: Row) -> Receipt {
        Receipt(
            id: row["id"], partner: row["partner"], filename: row["filename"], storedName: row["stored_name"],
            size: row["size"], sha256: row["sha256"], receivedAt: row.date("received_at"), idempotencyKey: row["idempotency_key"],
            signature: row["signature"]
        )
    }
}
