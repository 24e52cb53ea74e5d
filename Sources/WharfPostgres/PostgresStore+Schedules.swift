import Foundation
import PostgresNIO
import WharfCore

/// Schedules on the shared registry. Any node may read what is due, but a slot runs on the
/// node that takes it: `takeSlot` moves the next run and records the slot in
/// `schedule_firing` in one transaction, and the slot's primary key refuses a second
/// firing even from a leader that read the schedule before another moved it. A slot no
/// node took in time (the leader died) is still the schedule's next run, so the next
/// leader takes it late, once.
extension PostgresStore: ScheduleStore {
    public func dueSchedules(now: Date) throws(WharfError) -> [Schedule] {
        let now = now.roundedToMilliseconds
        return try withConnection { connection in
            var due: [Schedule] = []
            let rows = try await connection.query(
                "SELECT id, partner, cron, source_directory, pattern, keep, next_run_at FROM schedule WHERE next_run_at <= \(now) ORDER BY next_run_at, id",
                logger: Self.quiet
            )
            for try await (id, partner, cron, directory, pattern, keep, next) in rows.decode((Int64, String, String, String, String, Bool, Millis).self) {
                due.append(Schedule(id: id, partner: partner, cron: cron, sourceDirectory: directory, pattern: pattern, keep: keep, nextRunAt: next.date))
            }
            return due
        }
    }

    public func takeSlot(of scheduleID: Int64, slot: Date, next: Date) throws(WharfError) -> Bool {
        let node = node
        let next = next.roundedToMilliseconds
        return try transaction { connection in
            // The slot as stored: what `dueSchedules` read, to the microsecond.
            let fired = try await connection.query("""
                INSERT INTO schedule_firing (schedule_id, slot, fired_by, fired_at)
                SELECT id, next_run_at, \(node), now() FROM schedule
                WHERE id = \(scheduleID) AND abs(extract(epoch FROM next_run_at) - \(slot.timeIntervalSince1970)) < 0.0005
                ON CONFLICT DO NOTHING
                RETURNING slot
                """, logger: Self.quiet)
            var taken = false
            for try await _ in fired { taken = true }
            guard taken else { return false }
            try await connection.run("UPDATE schedule SET next_run_at = \(next) WHERE id = \(scheduleID)")
            return true
        }
    }

    public func lastSent(by scheduleID: Int64, path: String) throws(WharfError) -> String? {
        try withConnection { connection in
            let rows = try await connection.query(
                "SELECT sha256 FROM schedule_sent WHERE schedule_id = \(scheduleID) AND path = \(path)", logger: Self.quiet
            )
            for try await sha256 in rows.decode(String.self) { return sha256 }
            return nil
        }
    }

    /// Which node fired each slot of schedule `scheduleID`, oldest first.
    public func firings(of scheduleID: Int64) throws(WharfError) -> [(slot: Date, node: String)] {
        try withConnection { connection in
            var firings: [(slot: Date, node: String)] = []
            let rows = try await connection.query(
                "SELECT slot, fired_by FROM schedule_firing WHERE schedule_id = \(scheduleID) ORDER BY slot", logger: Self.quiet
            )
            for try await (slot, node) in rows.decode((Millis, String).self) { firings.append((slot.date, node)) }
            return firings
        }
    }
}

/// Leadership: one node at a time does what must happen once (schedules, pruning, rescue
/// of expired claims). It is a lease in the one-row `leader` table: taken when free or
/// expired, renewed by its holder, given up when the holder stops.
extension PostgresStore {
    /// Takes or renews leadership until `now + duration`; `true` while this node holds it.
    /// Nodes' clocks must agree to well within `duration` (NTP).
    public func lead(now: Date = Date(), for duration: Double) throws(WharfError) -> Bool {
        let node = node
        let now = now.roundedToMilliseconds
        let expires = now.addingTimeInterval(duration).roundedToMilliseconds
        return try withConnection { connection in
            let rows = try await connection.query("""
                INSERT INTO leader (id, holder, expires_at) VALUES (1, \(node), \(expires))
                ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                WHERE leader.holder = excluded.holder OR leader.expires_at < \(now)
                RETURNING holder
                """, logger: Self.quiet)
            var leads = false
            for try await _ in rows { leads = true }
            return leads
        }
    }

    /// Gives leadership up at once, if this node holds it, so another takes it without
    /// waiting for the lease to run out.
    public func stepDown() throws(WharfError) {
        let node = node
        try withConnection { connection in
            try await connection.run("DELETE FROM leader WHERE id = 1 AND holder = \(node)")
        }
    }

    /// The node leading now and until when, if any.
    public func leader() throws(WharfError) -> (node: String, until: Date)? {
        try withConnection { connection in
            for try await (holder, expires) in try await connection.query("SELECT holder, expires_at FROM leader WHERE id = 1", logger: Self.quiet).decode((String, Millis).self) {
                return (holder, expires.date)
            }
            return nil
        }
    }
}
