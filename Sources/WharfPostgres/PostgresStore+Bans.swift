import Foundation
import PostgresNIO
import WharfCore

/// The defender's bans, shared: a ban one node makes is enforced by all (each reads them
/// back every few seconds).
extension PostgresStore: BanList {
    public func addressBans() throws(WharfError) -> [AddressBan] {
        try withConnection { connection in
            var bans: [AddressBan] = []
            let rows = try await connection.query("SELECT address, since, until, times, reason FROM address_ban ORDER BY since", logger: Self.quiet)
            for try await (address, since, until, times, reason) in rows.decode((String, Millis, Millis, Int, String).self) {
                bans.append(AddressBan(address: address, since: since.date, until: until.date, times: times, reason: reason))
            }
            return bans
        }
    }

    public func saveBan(_ ban: AddressBan) throws(WharfError) {
        let forgotten = ban.since.addingTimeInterval(-86_400).roundedToMilliseconds
        try transaction { connection in
            try await connection.run("""
                INSERT INTO address_ban (address, since, until, times, reason)
                VALUES (\(ban.address), \(ban.since.roundedToMilliseconds), \(ban.until.roundedToMilliseconds), \(ban.times), \(ban.reason))
                ON CONFLICT (address) DO UPDATE SET since = excluded.since, until = excluded.until, times = excluded.times, reason = excluded.reason
                """)
            try await connection.run("DELETE FROM address_ban WHERE until < \(forgotten)")
        }
    }
}
