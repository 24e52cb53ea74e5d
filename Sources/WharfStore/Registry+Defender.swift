import Foundation
import GRDB
import WharfCore

extension Registry: BanList {
    /// Every ban remembered, oldest first.
    public func addressBans() throws(WharfError) -> [AddressBan] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM address_ban ORDER BY since").map { row in
                AddressBan(address: row["address"], since: row.date("since"), until: row.date("until"), times: row["times"], reason: row["reason"])
            }
        }
    }

    /// Stores `ban` (replacing the address's earlier one) and forgets bans that ended more
    /// than a day ago.
    public func saveBan(_ ban: AddressBan) throws(WharfError) {
        try write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO address_ban (address, since, until, times, reason) VALUES (?, ?, ?, ?, ?)",
                arguments: [ban.address, ban.since.stored, ban.until.stored, ban.times, ban.reason]
            )
            try db.execute(sql: "DELETE FROM address_ban WHERE until < ?", arguments: [ban.since.addingTimeInterval(-86_400).stored])
        }
    }

    /// Lifts the ban on `address` (it ends now and counts as no earlier ban), with the
    /// audit event for it, in one transaction. `false` if the address is not banned.
    public func liftBan(_ address: String, now: Date, audit: AuditEvent) throws(WharfError) -> Bool {
        try write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT since, until FROM address_ban WHERE address = ?", arguments: [address]),
                  row.date("until") > now
            else { return false }
            try db.execute(sql: "UPDATE address_ban SET until = ?, times = 0 WHERE address = ?", arguments: [now.stored, address])
            try Self.insert(audit, db)
            return true
        }
    }
}
