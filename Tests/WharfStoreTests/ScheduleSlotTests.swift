import Foundation
import Testing
import WharfCore
@testable import WharfStore

/// A schedule's slot is taken once: the next run moves only from the slot the taker read.
@Suite struct ScheduleSlotTests {
    @Test func aSlotIsTakenOnceAndAStaleReadTakesNothing() throws {
        let registry = try Registry.create(at: scratchRegistryPath("slots"))
        try registry.add(Partner(name: PartnerName("acme")))
        let first = Date(timeIntervalSince1970: 1_800_000_000)
        let schedule = try registry.addSchedule(
            partner: PartnerName("acme"), cron: CronExpression(parsing: "* * * * *"), sourceDirectory: "/nonexistent",
            pattern: "*", keep: false, firstRun: first
        )
        let due = try #require(try registry.dueSchedules(now: first.addingTimeInterval(1)).first)
        #expect(try registry.takeSlot(of: schedule.id, slot: due.nextRunAt, next: first.addingTimeInterval(60)))
        #expect(try registry.takeSlot(of: schedule.id, slot: due.nextRunAt, next: first.addingTimeInterval(60)) == false)
        #expect(try registry.schedules().first?.nextRunAt == first.addingTimeInterval(60))
        #expect(try registry.dueSchedules(now: first.addingTimeInterval(1)).isEmpty)
    }
}
