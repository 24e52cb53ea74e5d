import Foundation
import GRDB
import WharfCore

extension Registry: ScheduleStore {
    /// Records a schedule and returns it with its id.
    public func addSchedule(
        partner: PartnerName, cron: CronExpression, sourceDirectory: String, pattern: String, keep: Bool, firstRun: Date
    ) throws(WharfError) -> Schedule {
        try write { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM partner WHERE name = ?)", arguments: [partner.rawValue]) == true else {
                throw WharfError.unknownPartner(partner.rawValue)
            }
            try db.execute(
                sql: """
                    INSERT INTO schedule (partner, cron, source_directory, pattern, keep, next_run_at, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [partner.rawValue, cron.description, sourceDirectory, pattern, keep, firstRun.stored, Date().stored]
            )
            return Schedule(
                id: db.lastInsertedRowID, partner: partner.rawValue, cron: cron.description,
                sourceDirectory: sourceDirectory, pattern: pattern, keep: keep, nextRunAt: firstRun
            )
        }
    }

    public func schedules() throws(WharfError) -> [Schedule] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM schedule ORDER BY id").map(Self.schedule(from:)) }
    }

    /// Schedules whose next run is at or before `now`.
    public func dueSchedules(now: Date) throws(WharfError) -> [Schedule] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM schedule WHERE next_run_at <= ? ORDER BY next_run_at", arguments: [now.stored])
                .map(Self.schedule(from:))
        }
    }

    public func takeSlot(of scheduleID: Int64, slot: Date, next: Date) throws(WharfError) -> Bool {
        try write { db in
            try db.execute(
                sql: "UPDATE schedule SET next_run_at = ? WHERE id = ? AND next_run_at = ?",
                arguments: [next.stored, scheduleID, slot.stored]
            )
            return db.changesCount == 1
        }
    }

    /// Sets when a schedule runs next.
    public func setNextRun(of scheduleID: Int64, to date: Date) throws(WharfError) {
        try write { db in
            try db.execute(sql: "UPDATE schedule SET next_run_at = ? WHERE id = ?", arguments: [date.stored, scheduleID])
        }
    }

    public func removeSchedule(_ id: Int64) throws(WharfError) {
        try write { db in
            try db.execute(sql: "DELETE FROM schedule WHERE id = ?", arguments: [id])
            if db.changesCount == 0 {
                throw WharfError(.notFound, "no schedule \(id)", fix: "`wharf schedule list` shows the schedules")
            }
        }
    }

    /// The SHA-256 last sent of `path` by a `--keep` schedule.
    public func lastSent(by scheduleID: Int64, path: String) throws(WharfError) -> String? {
        try read { db in
            try String.fetchOne(db, sql: "SELECT sha256 FROM schedule_sent WHERE schedule_id = ? AND path = ?", arguments: [scheduleID, path])
        }
    }

    static func schedule(from row: Row) -> Schedule {
        Schedule(
            id: row["id"], partner: row["partner"], cron: row["cron"], sourceDirectory: row["source_directory"],
            pattern: row["pattern"], keep: row["keep"], nextRunAt: row.date("next_run_at")
        )
    }
}
