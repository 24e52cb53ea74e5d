import Foundation
import Logging
import WharfCore
import WharfSpool

/// Runs schedules: at each time of its cron expression, a schedule queues the files of its
/// directory that match its pattern — moved into the spool, or with `--keep` copied and
/// sent again only when their content changed.
public struct Scheduler: Sendable {
    private let outbox: Outbox
    private let store: any DeliveryStore
    private let logger: Logger

    public init(store: any DeliveryStore, spool: Spool, logger: Logger) {
        self.outbox = Outbox(store: store, spool: spool)
        self.store = store
        self.logger = logger
    }

    /// Runs every schedule due at `now` and sets its next run; returns what was queued.
    /// `calendar` (the system's when `nil`) is made only when a schedule is due: the
    /// current calendar brings up ICU's locale and time-zone data, which a gateway with no
    /// schedule due never needs.
    @discardableResult
    public func runDue(now: Date, calendar: Calendar? = nil) -> [Transfer] {
        var queued: [Transfer] = []
        let due: [Schedule]
        do {
            due = try store.dueSchedules(now: now)
        } catch {
            logger.error("schedules cannot be read", metadata: ["error": "\(error)"])
            return []
        }
        guard !due.isEmpty else { return [] }
        let calendar = calendar ?? .current
        for schedule in due {
            // Taken first: on several nodes, the one that takes a slot runs it.
            let taken: Bool
            do {
                let cron = try CronExpression(parsing: schedule.cron)
                // A schedule that never fires again is parked far in the future.
                let next = cron.next(after: now, calendar: calendar) ?? .distantFuture
                taken = try store.takeSlot(of: schedule.id, slot: schedule.nextRunAt, next: next)
            } catch {
                logger.error("a schedule could not be advanced", metadata: ["schedule": "\(schedule.id)", "error": "\(error)"])
                continue
            }
            guard taken else { continue }
            let ran = run(schedule)
            queued += ran
            logger.info("schedule ran", metadata: [
                "schedule": "\(schedule.id)", "partner": "\(schedule.partner)", "queued": "\(ran.count)",
            ])
        }
        return queued
    }

    private func run(_ schedule: Schedule) -> [Transfer] {
        guard let partner = try? PartnerName(schedule.partner) else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: schedule.sourceDirectory)) ?? []
        var queued: [Transfer] = []
        for name in names.sorted()
        where !name.hasPrefix(".") && !name.hasSuffix(".tmp") && fnmatch(schedule.pattern, name, 0) == 0 {
            let path = "\(schedule.sourceDirectory)/\(name)"
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            do {
                let transfer = schedule.keep
                    ? try outbox.queue(path, for: partner, schedule: schedule.id)
                    : try outbox.queue(path, for: partner, move: true)
                if let transfer { queued.append(transfer) }
            } catch {
                logger.error("a scheduled file could not be queued", metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
        return queued
    }
}
