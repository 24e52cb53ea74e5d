import ArgumentParser
import Foundation
import WharfCore
import WharfSpool

extension Transfer.State: ExpressibleByArgument {}

/// `wharf transfers`: the outbound queue.
struct Transfers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, inspect, retry and cancel outbound transfers.",
        subcommands: [List.self, Show.self, Retry.self, Cancel.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List transfers, newest first.")

        @OptionGroup var home: HomeOptions

        @Option(help: "Only transfers in this state: queued, sending, retrying, delivered, dead or cancelled.")
        var state: Transfer.State?

        @OptionGroup var list: ListOptions

        func run() throws {
            let transfers = try home.resolved.openStore().transfers(state: state, partner: try list.partnerName(), limit: list.limit)
            Listing.print(transfers.map(TransferJSON.init), json: list.json, empty: "No transfers.") { (transfer: TransferJSON) -> String in
                let next = transfer.state == .retrying ? transfer.nextAttemptAt.map { " next \($0.formatted(.iso8601))" } ?? "" : ""
                return "\(transfer.id)  \(transfer.state.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0))  \(transfer.partner)  \(transfer.filename)  \(transfer.size) bytes  \(transfer.attempts) attempts\(next)\(transfer.lastError.map { "  \($0)" } ?? "")"
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one transfer with every attempt.")

        @OptionGroup var home: HomeOptions

        @Argument(help: "The transfer id.")
        var id: String

        @Flag(help: "Print JSON.")
        var json = false

        struct Report: Encodable {
            let transfer: TransferJSON
            let attempts: [DeliveryAttempt]
        }

        func run() throws {
            let registry = try home.resolved.openStore()
            guard let transfer = try registry.transfer(id: id) else {
                throw WharfError(.notFound, "no transfer \(id)", fix: "`wharf transfers list` shows the transfers")
            }
            let attempts = try registry.attempts(of: id)
            if json {
                Console.printJSON(Listing.json(Report(transfer: TransferJSON(transfer), attempts: attempts)))
                return
            }
            Console.print("\(transfer.id)  \(transfer.state.rawValue)")
            Console.print("  partner    \(transfer.partner)")
            Console.print("  file       \(transfer.filename), \(transfer.size) bytes, sha256 \(transfer.sha256)")
            Console.print("  created    \(transfer.createdAt.formatted(.iso8601))")
            if let next = transfer.nextAttemptAt { Console.print("  next try   \(next.formatted(.iso8601))") }
            if let error = transfer.lastError { Console.print("  reason     \(error)") }
            if let delivered = transfer.deliveredAt { Console.print("  delivered  \(delivered.formatted(.iso8601))") }
            if let receipt = transfer.receipt, !receipt.isEmpty { Console.print("  receipt    \(EscapedText.terminal(receipt))") }
            if transfer.receiptSignature != nil {
                let fetched = attempts.last?.remoteAddress != nil
                Console.print(fetched
                    ? "  signed     by this gateway's server key, as the partner was given it (--json has the JWS)"
                    : "  signed     by the receiver's server key, verified on delivery (--json has the JWS)")
            }
            for attempt in attempts {
                if let fetcher = attempt.remoteAddress {
                    Console.print("  attempt \(attempt.number)  \(attempt.startedAt.formatted(.iso8601))  fetched and acknowledged from \(fetcher)  \(attempt.bytesSent) bytes")
                    continue
                }
                let status = attempt.httpStatus.map { "HTTP \($0)" } ?? "no HTTP status"
                let curl = attempt.curlCode.map { "curl \($0)" } ?? "not sent"
                Console.print("  attempt \(attempt.number)  \(attempt.startedAt.formatted(.iso8601))  \(String(format: "%.3f", attempt.duration)) s  \(curl)  \(status)  \(attempt.bytesSent) bytes sent\(attempt.error.map { "  \($0)" } ?? "")")
            }
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a dead or waiting transfer back in the queue, due now.")

        @OptionGroup var home: HomeOptions

        @Argument(help: "The transfer id.")
        var id: String

        func run() throws {
            let registry = try home.resolved.openStore()
            let transfer = try registry.retry(id, now: Date())
            OperatorAudit.record(registry, "transfers retry", partner: transfer.partner, "transfer \(transfer.id) queued again")
            Console.print("\(transfer.id)  queued again")
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a transfer that is not being sent, and delete its queued file.")

        @OptionGroup var home: HomeOptions

        @Argument(help: "The transfer id.")
        var id: String

        func run() throws {
            let home = home.resolved
            let spool = Spool(root: home.spoolDirectory)
            let registry = try home.openStore()
            try registry.cancel(id) { spool.removeOutgoing(id) }
            OperatorAudit.record(registry, "transfers cancel", partner: try registry.transfer(id: id)?.partner, "transfer \(id) cancelled")
            Console.print("\(id)  cancelled")
        }
    }
}
