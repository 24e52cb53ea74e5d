import ArgumentParser
import WharfCore
import WharfSpool

/// `wharf partner enable`.
struct PartnerEnable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable", abstract: "Accept a disabled partner again.")

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    func run() throws {
        let name = try PartnerName(name)
        let registry = try home.resolved.openStore()
        try registry.setStatus(.active, of: name)
        OperatorAudit.record(registry, "partner enable", partner: name.rawValue, "status active")
        Console.print("Partner \(name) is active.")
    }
}

/// `wharf partner disable`.
struct PartnerDisable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Refuse a partner's connections and hold its deliveries, keeping its settings."
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    func run() throws {
        let name = try PartnerName(name)
        let registry = try home.resolved.openStore()
        try registry.setStatus(.disabled, of: name)
        OperatorAudit.record(registry, "partner disable", partner: name.rawValue, "status disabled")
        Console.print("Partner \(name) is disabled.")
    }
}

/// `wharf partner remove`.
struct PartnerRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a partner from the registry.",
        discussion: """
            Its identities and settings go; files already received and its bundle directory stay. \
            A partner with transfers still to deliver (queued or retrying) or with schedules is \
            kept, and they are named, unless --force, which cancels those transfers (deleting \
            their files) and removes those schedules first. A transfer being sent at that moment \
            always keeps its partner: wait for the attempt to end.
            """
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    @Flag(help: "Cancel the partner's pending transfers and remove its schedules, then remove it.")
    var force = false

    func run() throws {
        let name = try PartnerName(name)
        let home = home.resolved
        let registry = try home.openStore()
        guard try registry.partner(named: name) != nil else { throw WharfError.unknownPartner(name.rawValue) }
        let pending = try registry.transfers(partner: name.rawValue, limit: Int.max).filter { !$0.state.isFinal }
        let schedules = try registry.schedules().filter { $0.partner == name.rawValue }
        let sending = pending.filter { $0.state == .sending }
        if !sending.isEmpty {
            throw WharfError(
                .conflict, "partner '\(name)' has \(Self.describe(sending.map(\.id), "transfer")) being sent now",
                fix: "wait for the attempt to end (`wharf transfers list --partner \(name)`), then remove it"
            )
        }
        if !force, !pending.isEmpty || !schedules.isEmpty {
            let parts = [
                pending.isEmpty ? nil : "\(Self.describe(pending.map(\.id), "pending transfer"))",
                schedules.isEmpty ? nil : "\(Self.describe(schedules.map { String($0.id) }, "schedule"))",
            ].compactMap { $0 }
            throw WharfError(
                .conflict, "partner '\(name)' still has \(parts.joined(separator: " and "))",
                fix: "let them finish, cancel or remove them, or remove the partner with --force, which does that first"
            )
        }
        let spool = Spool(root: home.spoolDirectory)
        for transfer in pending {
            try registry.cancel(transfer.id) { spool.removeOutgoing(transfer.id) }
            Console.print("Cancelled transfer \(transfer.id) (\(transfer.filename)).")
        }
        for schedule in schedules {
            try registry.removeSchedule(schedule.id)
            Console.print("Removed schedule \(schedule.id).")
        }
        try registry.remove(name)
        let forced = pending.isEmpty && schedules.isEmpty ? "" : " after cancelling \(pending.count) transfers and removing \(schedules.count) schedules"
        OperatorAudit.record(registry, "partner remove", partner: name.rawValue, "removed\(forced)")
        Console.print("Removed partner \(name).")
    }

    /// `transfer t1` or `3 transfers: t1, t2, t3`.
    static func describe(_ ids: [String], _ noun: String) -> String {
        ids.count == 1 ? "\(noun) \(ids[0])" : "\(ids.count) \(noun)s: \(ids.joined(separator: ", "))"
    }
}
