import ArgumentParser
import Foundation
import WharfCore
import WharfStore

/// `wharf defender`: the addresses the listener's defender banned.
struct DefenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "defender",
        abstract: "List and lift the defender's bans on client addresses.",
        discussion: """
            `wharf serve` scores what an address does that a partner in good standing does not: \
            a refused TLS handshake or a certificate of no active partner (2 points), a request \
            that is not HTTP (2), more connections than --max-connections-per-address (3). 15 \
            points within 30 minutes ban the address for 30 minutes, each later ban 15 minutes \
            longer; a banned address's connections are closed as they arrive, before TLS. \
            Addresses in --defender-allow are never banned; --defender off turns it off. An \
            unban takes effect within 2 seconds, without a restart.
            """,
        subcommands: [List.self, Unban.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the addresses banned now, the longest-banned first.")

        @OptionGroup var home: HomeOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let now = Date()
            let bans = try home.resolved.openStore().addressBans().filter { $0.isActive(at: now) }
            Listing.print(bans, json: json, empty: "No address is banned.",
                          header: "ADDRESS                                  BANNED SINCE          UNTIL                 BAN  REASON") { ban in
                [
                    ban.address.padding(toLength: 39, withPad: " ", startingAt: 0),
                    ban.since.utcTimestamp(), ban.until.utcTimestamp(), String(ban.times).leftPadded(to: 3), ban.reason,
                ].joined(separator: "  ")
            }
        }
    }

    struct Unban: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift the ban on an address now; its next ban counts as its first.",
            discussion: "The running gateway lets it connect again within 2 seconds. The change is in the audit trail."
        )

        @OptionGroup var home: HomeOptions

        @Argument(help: ArgumentHelp("The address, as `defender list` shows it.", valueName: "address"))
        var address: String

        func run() throws {
            guard AddressRange.isAddress(address) else {
                throw WharfError.invalid("'\(EscapedText.terminal(address))' is not an IP address", fix: "give the address as `wharf defender list` shows it, such as 192.0.2.7")
            }
            let registry = try home.resolved.openStore()
            let now = Date()
            let event = AuditEvent(
                at: now, kind: .admin, outcome: .changed, status: nil, partner: nil, subject: nil, fingerprint: nil,
                remoteAddress: address, detail: "ban on \(address) lifted", actor: OperatorAudit.user, command: "defender unban"
            )
            guard try registry.liftBan(address, now: now, audit: event) else {
                throw WharfError(.notFound, "\(address) is not banned", fix: "see the banned addresses with `wharf defender list`")
            }
            Console.print("Lifted the ban on \(address); a running gateway accepts it again within 2 seconds.")
        }
    }
}
