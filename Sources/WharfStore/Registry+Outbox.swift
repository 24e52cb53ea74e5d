import Foundation
import GRDB
import WharfCore

extension Registry: PullOutbox {
    public func outbox(of partner: String, after: String?, limit: Int) throws(WharfError) -> [Transfer] {
        try read { db in
            // Pages follow (queued_at, id): ids alone sort by the second only.
            guard let after else {
                return try Row.fetchAll(
                    db.cachedStatement(sql: """
                        SELECT * FROM transfer WHERE partner = ? AND state IN ('queued', 'retrying')
                        ORDER BY queued_at, id LIMIT ?
                        """),
                    arguments: [partner, limit]
                ).map(Self.transfer(from:))
            }
            return try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT * FROM transfer WHERE partner = ? AND state IN ('queued', 'retrying')
                      AND (queued_at, id) > (SELECT queued_at, id FROM transfer WHERE id = ? AND partner = ?)
                    ORDER BY queued_at, id LIMIT ?
                    """),
                arguments: [partner, after, partner, limit]
            ).map(Self.transfer(from:))
        }
    }

    public func outboxTransfer(id: String, of partner: String) throws(WharfError) -> Transfer? {
        try read { db in
            try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM transfer WHERE id = ? AND partner = ?"), arguments: [id, partner]
            ).map(Self.transfer(from:))
        }
    }

    public func acknowledge(
        _ id: String, of partner: String, at now: Date, remoteAddress: String?,
        receipt: (Transfer) -> (json: String, signature: String?), install: (Transfer) throws -> Void
    ) throws(WharfError) -> Transfer? {
        let acknowledged = try write { db -> (transfer: Transfer, isNew: Bool)? in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM transfer WHERE id = ? AND partner = ?", arguments: [id, partner])
            else { return nil }
            var transfer = Self.transfer(from: row)
            if transfer.state == .delivered { return (transfer, false) }
            transfer.deliveredAt = now
            let receipt = receipt(transfer)
            try db.cachedStatement(sql: """
                    INSERT INTO delivery_attempt (transfer_id, number, started_at, duration_seconds, curl_code, http_status, bytes_sent, error, remote_address)
                    VALUES (?, ?, ?, 0, NULL, 200, ?, NULL, ?)
                    """).execute(arguments: [id, transfer.attempts + 1, now.stored, transfer.size, remoteAddress])
            try Self.apply(
                .acknowledge, to: id,
                setting: "attempts = attempts + 1, attempts_since_queued = attempts_since_queued + 1, receipt = ?, receipt_signature = ?, delivered_at = ?, next_attempt_at = NULL, last_error = NULL",
                arguments: [receipt.json, receipt.signature, now.stored], in: db
            )
            try Self.insert(AuditEvent(
                at: now, kind: .delivery, outcome: .delivered, status: 200, partner: partner, subject: nil, fingerprint: nil,
                remoteAddress: remoteAddress, detail: "\(id) \(transfer.filename): \(transfer.size) bytes, fetched"
            ), db)
            transfer.state = .delivered
            transfer.attempts += 1
            transfer.receipt = receipt.json
            transfer.receiptSignature = receipt.signature
            return (transfer, true)
        }
        guard let acknowledged else { return nil }
        if acknowledged.isNew {
            // The acknowledgement stands if the move fails: recovery moves the file at start.
            do { try install(acknowledged.transfer) } catch {}
        }
        return acknowledged.transfer
    }

    public func expireUnfetched(now: Date, defaultMaxAge: Double) throws(WharfError) -> [Transfer] {
        let due = """
            SELECT transfer.*, coalesce(partner.max_age_seconds, ?) AS max_age FROM transfer
            JOIN partner ON partner.name = transfer.partner
            WHERE partner.delivery_mode = 'pull' AND transfer.state IN ('queued', 'retrying')
              AND (julianday(?) - julianday(transfer.queued_at)) * 86400 > coalesce(partner.max_age_seconds, ?)
            """
        // Read first: most sweeps find nothing, and then write nothing.
        let found = try read { db in
            try Row.fetchAll(db.cachedStatement(sql: due), arguments: [defaultMaxAge, now.stored, defaultMaxAge]).count
        }
        guard found > 0 else { return [] }
        return try write { db in
            var expired: [Transfer] = []
            for row in try Row.fetchAll(db.cachedStatement(sql: due), arguments: [defaultMaxAge, now.stored, defaultMaxAge]) {
                var transfer = Self.transfer(from: row)
                let reason = "not fetched within the maximum age of \(RetryPolicy.describe(row["max_age"]))"
                try Self.apply(.expire, to: transfer.id, setting: "next_attempt_at = NULL, last_error = ?", arguments: [reason], in: db)
                try Self.insert(AuditEvent.delivery(transfer, outcome: .dead(reason: reason), status: nil), db)
                transfer.state = .dead
                transfer.lastError = reason
                expired.append(transfer)
            }
            return expired
        }
    }
}
