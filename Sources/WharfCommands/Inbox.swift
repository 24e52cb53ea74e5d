import ArgumentParser
import Foundation
import WharfCore

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
            let receipts = try home.resolved.openRegistry().receipts(partner: try list.partnerName(), limit: list.limit)
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
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the audit trail of uploads accepted and refused.",
        subcommands: [List.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List audit events, newest first.")

        @OptionGroup var home: HomeOptions

        @Option(help: "How many to list.")
        var limit: Int = 100

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let events = try home.resolved.openRegistry().auditEvents(limit: limit)
            Listing.print(events, json: json, empty: "No events yet.") { event in
                let who = event.partner ?? event.subject ?? "no certificate"
                return "\(event.at.formatted(.iso8601))  \(event.outcome.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0))  \(event.status.map(String.init) ?? "-")  \(who)  \(event.remoteAddress ?? "-")  \(event.detail ?? "")"
            }
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
