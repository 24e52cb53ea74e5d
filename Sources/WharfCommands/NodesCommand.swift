import ArgumentParser
import Foundation
import WharfCore

/// `wharf nodes`: the nodes of a gateway whose registry is PostgreSQL.
struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List the nodes that share this home's registry.",
        subcommands: [List.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every node registered: its address, version, start, last heartbeat, and whether it is alive.",
            discussion: "A node is alive while its heartbeat (every 5 s) is at most 15 s old. The leader is marked."
        )

        @OptionGroup var home: HomeOptions

        @Flag(help: "Print JSON.")
        var json = false

        struct Report: Encodable {
            let name: String
            let address: String?
            let version: String
            let startedAt: Date
            let heartbeatAt: Date
            let alive: Bool
            let leader: Bool
        }

        func run() throws {
            let home = home.resolved
            guard let nodes = try home.openStore() as? any NodeRegistry else {
                throw WharfError.invalid(
                    "the home \(home.path) has the embedded registry: it is one node",
                    fix: "nodes share a PostgreSQL registry; see `wharf init --database` and `wharf db copy`"
                )
            }
            let now = Date()
            let window = 3 * Double(Gateway.heartbeatInterval.components.seconds)
            let leader = try nodes.leader().flatMap { $0.until > now ? $0.node : nil }
            let reports = try nodes.nodes().map { node in
                Report(
                    name: node.name, address: node.address, version: node.version, startedAt: node.startedAt,
                    heartbeatAt: node.heartbeatAt, alive: node.isAlive(at: now, window: window), leader: node.name == leader
                )
            }
            Listing.print(reports, json: json, empty: "No nodes have registered.") { (node: Report) -> String in
                let age = max(0, Int(now.timeIntervalSince(node.heartbeatAt).rounded()))
                return [
                    EscapedText.terminal(node.name), node.alive ? "alive" : "dead ", node.leader ? "leader" : "      ",
                    EscapedText.terminal(node.address ?? "-"), "version \(EscapedText.terminal(node.version))",
                    "started \(node.startedAt.formatted(.iso8601))", "heartbeat \(age) s ago",
                ].joined(separator: "  ")
            }
        }
    }
}
