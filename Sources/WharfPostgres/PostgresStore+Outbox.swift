import Foundation
import PostgresNIO
import WharfCore

/// Pull partners' outboxes on the shared registry: a partner may list on one node and
/// acknowledge on another. The acknowledgement holds the transfer's row, so two nodes
/// acknowledging the same transfer at once record one delivery.
extension PostgresStore: PullOutbox {
    public func outbox(of partner: String, after: String?, limit: Int) throws(WharfError) -> [Transfer] {
        try withConnection { connection in
            // Pages follow (queued_at, id): ids alone sort by the second only.
            let rows = try await connection.query("""
                SELECT * FROM transfer WHERE partner = \(partner) AND state IN ('queued', 'retrying')
                  AND (\(after)::text IS NULL OR (queued_at, id) > (SELECT queued_at, id FROM transfer WHERE id = \(after) AND partner = \(partner)))
                ORDER BY queued_at, id LIMIT \(limit)
                """, logger: Self.quiet)
            var transfers: [Transfer] = []
            for try await row in rows { transfers.append(try Self.transfer(from: row)) }
            return transfers
        }
    }

    public func outboxTransfer(id: String, of partner: String) throws(WharfError) -> Transfer? {
        try withConnection { connection in
            for try await row in try await connection.query("SELECT * FROM transfer WHERE id = \(id) AND partner = \(partner)", logger: Self.quiet) {
                return try Self.transfer(from: row)
            }
            return nil
        }
    }

    public func acknowledge(
        _ id: String, of partner: String, at now: Date, remoteAddress: String?,
        receipt: (Transfer) -> (json: String, signature: String?), install: (Transfer) throws -> Void
    ) throws(WharfError) -> Transfer? {
        let node = node
        let now = now.roundedToMilliseconds
        // The receipt is made (and signed) by the caller's closure on this thread, from the
        // transfer as read; the transaction then records it only if the transfer is still
        // waiting, and otherwise answers with what another node recorded.
        guard var transfer = try outboxTransfer(id: id, of: partner) else { return nil }
        if transfer.state == .delivered { return transfer }
        transfer.deliveredAt = now
        let signed = receipt(transfer)
        let read = transfer
        let acknowledged = try transaction { connection -> Acknowledged? in
            var current: Transfer?
            for try await row in try await connection.query("SELECT * FROM transfer WHERE id = \(id) AND partner = \(partner) FOR UPDATE", logger: Self.quiet) {
                current = try Self.transfer(from: row)
            }
            guard let current else { return nil }
            if current.state == .delivered { return Acknowledged(transfer: current, isNew: false) }
            var transfer = read
            try await connection.run("""
                INSERT INTO delivery_attempt (transfer_id, number, started_at, duration_seconds, curl_code, http_status, bytes_sent, error, remote_address)
                VALUES (\(id), \(current.attempts + 1), \(now), 0, NULL, 200, \(current.size), NULL, \(remoteAddress))
                """)
            try await Self.apply(
                .acknowledge, to: id,
                setting: "attempts = attempts + 1, attempts_since_queued = attempts_since_queued + 1, receipt = $3, receipt_signature = $4, delivered_at = $5, next_attempt_at = NULL, last_error = NULL",
                bind: { $0.append(signed.json); $0.append(signed.signature); $0.append(now) }, node: node, in: connection
            )
            try await Self.insert(AuditEvent(
                at: now, kind: .delivery, outcome: .delivered, status: 200, partner: partner, subject: nil, fingerprint: nil,
                remoteAddress: remoteAddress, detail: "\(id) \(current.filename): \(current.size) bytes, fetched"
            ), connection)
            transfer.state = .delivered
            transfer.attempts = current.attempts + 1
            transfer.receipt = signed.json
            transfer.receiptSignature = signed.signature
            return Acknowledged(transfer: transfer, isNew: true)
        }
        guard let acknowledged else { return nil }
        if acknowledged.isNew {
            // The acknowledgement stands if the move fails: recovery moves the file at start.
            do { try install(acknowledged.transfer) } catch {}
        }
        return acknowledged.transfer
    }

    public func expireUnfetched(now: Date, defaultMaxAge: Double) throws(WharfError) -> [Transfer] {
        let node = node
        let now = now.roundedToMilliseconds
        return try transaction { connection in
            let rows = try await connection.query("""
                SELECT transfer.*, coalesce(partner.max_age_seconds, \(defaultMaxAge)) AS max_age FROM transfer
                JOIN partner ON partner.name = transfer.partner
                WHERE partner.delivery_mode = 'pull' AND transfer.state IN ('queued', 'retrying')
                  AND extract(epoch FROM \(now)::timestamptz - transfer.queued_at) > coalesce(partner.max_age_seconds, \(defaultMaxAge))
                ORDER BY transfer.queued_at, transfer.id
                FOR UPDATE OF transfer SKIP LOCKED
                """, logger: Self.quiet)
            var due: [(Transfer, Double)] = []
            for try await row in rows {
                due.append((try Self.transfer(from: row), try row.makeRandomAccess()["max_age"].decode(Double.self)))
            }
            var expired: [Transfer] = []
            for (var transfer, maxAge) in due {
                let reason = "not fetched within the maximum age of \(RetryPolicy.describe(maxAge))"
                try await Self.apply(
                    .expire, to: transfer.id, setting: "next_attempt_at = NULL, last_error = $3", bind: { $0.append(reason) }, node: node, in: connection
                )
                try await Self.insert(AuditEvent.delivery(transfer, outcome: .dead(reason: reason), status: nil), connection)
                transfer.state = .dead
                transfer.lastError = reason
                expired.append(transfer)
            }
            return expired
        }
    }
}

/// What an acknowledgement found: the transfer as it is now, and whether this call
/// delivered it.
struct Acknowledged: Sendable {
    var transfer: Transfer
    var isNew: Bool
}
