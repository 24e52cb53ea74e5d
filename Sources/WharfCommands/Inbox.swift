import ArgumentParser
import Foundation
import WharfCore
import WharfStore

/// `wharf inbox`: what partners sent.
struct Inbox: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List what partners sent.",
        subcommands: [List.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List received files, newest first.",
            discussion: "Files are in spool/inbox/PARTNER/ under their stored name (receipt id, a dash, the partner's file name)."
        )

        @OptionGroup var home: HomeOptions

        @OptionGroup var list: ListOptions

        func run() throws {
            let receipts = try home.resolved.openStore().receipts(partner: try list.partnerName(), limit: list.limit)
            Listing.print(
                receipts, json: list.json, empty: "Nothing received yet.",
                header: "ID                         PARTNER         SIZE  SHA-256           RECEIVED              NAME"
            ) { receipt in
                [
                    receipt.id.padding(toLength: 25, withPad: " ", startingAt: 0),
                    receipt.partner.padding(toLength: 12, withPad: " ", startingAt: 0),
                    String(receipt.size).leftPadded(to: 8),
                    String(receipt.sha256.prefix(16)),
                    receipt.receivedAt.formatted(.iso8601),
                    receipt.filename,
                ].joined(separator: "  ")
            }
        }
    }
}

/// `wharf audit`: every acceptance and refusal.
extension AuditEvent.Kind: ExpressibleByArgument {}
extension AuditEvent.Outcome: ExpressibleByArgument {}

/// `wharf audit`: the tamper-evident trail of uploads, refusals, deliveries and operators' changes.
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show and verify the audit trail: uploads, refusals, deliveries and operators' changes.",
        discussion: """
            Every event carries the SHA-256 of the one before it and of its own content. \
            `audit verify` walks that chain and names the first event that was changed, or \
            after which one was removed or moved; keep `audit head` elsewhere (a ticket, a log \
            shipper) to catch events removed from the end too.
            """,
        subcommands: [List.self, Verify.self, Head.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List audit events, newest first.")

        @OptionGroup var home: HomeOptions

        @Option(help: "Only this partner's events.")
        var partner: String?

        @Option(help: ArgumentHelp("Only events at or after this time (RFC 3339, or a date).", valueName: "time"))
        var since: String?

        @Option(help: "Only events of this kind: upload, refusal, admin or delivery.")
        var kind: AuditEvent.Kind?

        @Option(help: "Only events with this outcome: accepted, replayed, refused, changed, delivered, retrying or dead.")
        var outcome: AuditEvent.Outcome?

        @Option(help: "How many to list.")
        var limit: Int = 100

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let filter = AuditFilter(
                partner: try partner.map { name throws(WharfError) in try PartnerName(name).rawValue },
                since: try since.map { text throws(WharfError) in try PartnerSettingsOptions.parseTime(text, option: "--since") },
                kind: kind, outcome: outcome
            )
            let events = try home.resolved.openStore().auditEvents(filter, limit: limit)
            Listing.print(events, json: json, empty: "No events.") { (event: AuditEvent) -> String in
                let who = event.actor.map { "by \($0)" } ?? event.partner ?? event.subject ?? "no certificate"
                let partner = event.actor != nil ? event.partner.map { "  \($0)" } ?? "" : ""
                let fields = [
                    event.at.formatted(.iso8601), event.kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0),
                    event.outcome.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0), event.status.map(String.init) ?? "-",
                    who + partner, event.command ?? event.remoteAddress ?? "-", event.detail ?? "",
                ]
                return fields.joined(separator: "  ")
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the audit trail's hash chain; exit 1 naming the first event that breaks it."
        )

        @OptionGroup var home: HomeOptions

        @Option(help: ArgumentHelp("The hash `audit head` printed earlier: the trail must still end exactly there.", valueName: "hash"))
        var head: String?

        func run() throws {
            let registry = try home.resolved.openStore()
            let count = try registry.verifyAudit(head: head)
            Console.print("The audit trail is intact: \(count) events, each chained to the one before.")
            if let pruning = try registry.auditPruning() {
                Console.print("It starts after \(pruning.pruned) older events, removed by the retention (before \(pruning.before.utcTimestamp())).")
            }
        }
    }

    struct Head: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the hash of the latest audit event, to keep elsewhere.")

        @OptionGroup var home: HomeOptions

        func run() throws {
            let (count, hash) = try home.resolved.openStore().auditHead()
            Console.print("\(hash.isEmpty ? "-" : hash)  \(count) events")
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
