import ArgumentParser
import Foundation
import WharfCore

/// `wharf schedule`: queue a directory's files at cron times.
struct ScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Queue the files of a directory for a partner at cron times.",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a schedule.",
            discussion: """
                At each time of --cron (five fields, local time), the files of --from whose names \
                match --pattern are queued for PARTNER. They are moved into the spool; with \
                --keep they are copied instead, and a file is sent again only when it changes. \
                Names starting with . or ending in .tmp are left alone.
                """
        )

        @OptionGroup var home: HomeOptions

        @Argument(help: "The partner to deliver to.")
        var partner: String

        @Option(help: ArgumentHelp("A five-field cron expression, such as '0 6 * * MON-FRI'.", valueName: "expr"))
        var cron: String

        @Option(help: ArgumentHelp("The directory whose files are sent.", valueName: "dir"))
        var from: String

        @Option(help: ArgumentHelp("A shell glob the file names must match (default: all).", valueName: "glob"))
        var pattern: String = "*"

        @Flag(help: "Copy the files and send each again only when it changes, instead of moving them.")
        var keep = false

        func run() throws {
            let partner = try PartnerName(partner)
            let cron = try CronExpression(parsing: cron)
            var isDirectory: ObjCBool = false
            let directory = URL(fileURLWithPath: from).standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw WharfError.invalid("\(from) is not a directory", fix: "give --from an existing directory")
            }
            guard let first = cron.next(after: Date()) else {
                throw WharfError.invalid("'\(cron)' never fires", fix: "check the day of month and the month")
            }
            let registry = try home.resolved.openStore()
            guard let registered = try registry.partner(named: partner) else { throw WharfError.unknownPartner(partner.rawValue) }
            if registered.outbound.url == nil, registered.outbound.delivery == .push {
                throw WharfError.invalid(
                    "partner '\(partner)' has no delivery URL", fix: "set one with `wharf partner update \(partner) --url URL`"
                )
            }
            let schedule = try registry.addSchedule(
                partner: partner, cron: cron, sourceDirectory: directory, pattern: pattern, keep: keep, firstRun: first
            )
            OperatorAudit.record(registry, "schedule add", partner: partner.rawValue, "schedule \(schedule.id): '\(cron)' from \(directory) (\(pattern))\(keep ? " keep" : "")")
            Console.print("Schedule \(schedule.id): \(cron) from \(directory) (\(pattern)) to \(partner); first run \(first.formatted(.iso8601))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the schedules.")

        @OptionGroup var home: HomeOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let schedules = try home.resolved.openStore().schedules()
            Listing.print(schedules, json: json, empty: "No schedules.") { schedule in
                "\(schedule.id)  \(schedule.partner)  '\(schedule.cron)'  \(schedule.sourceDirectory)/\(schedule.pattern)\(schedule.keep ? "  keep" : "")  next \(schedule.nextRunAt.formatted(.iso8601))"
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a schedule; its files stay where they are.")

        @OptionGroup var home: HomeOptions

        @Argument(help: "The schedule id.")
        var id: Int64

        func run() throws {
            let registry = try home.resolved.openStore()
            try registry.removeSchedule(id)
            OperatorAudit.record(registry, "schedule remove", "schedule \(id)")
            Console.print("Removed schedule \(id).")
        }
    }
}
