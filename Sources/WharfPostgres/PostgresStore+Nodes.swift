import Foundation
import PostgresNIO
import WharfCore

extension PostgresStore: NodeRegistry {
    public var nodeName: String { node }
    public var claimLease: Double { lease }

    /// Records this node as started now (replacing a row of an earlier run of the same name).
    public func registerNode(address: String?, version: String, at now: Date = Date()) throws(WharfError) {
        let node = node
        let now = now.roundedToMilliseconds
        _ = try transaction { connection in
            try await connection.run("""
                INSERT INTO node (name, address, version, started_at, heartbeat_at) VALUES (\(node), \(address), \(version), \(now), \(now))
                ON CONFLICT (name) DO UPDATE SET address = excluded.address, version = excluded.version,
                                                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                """)
        }
    }

    /// Renews this node's heartbeat; re-registers it if its row was removed.
    public func heartbeat(at now: Date = Date()) throws(WharfError) {
        let node = node
        let now = now.roundedToMilliseconds
        _ = try withConnection { connection in
            try await connection.run("UPDATE node SET heartbeat_at = \(now) WHERE name = \(node)")
        }
    }

    /// Every node registered, by name.
    public func nodes() throws(WharfError) -> [NodeRecord] {
        try withConnection { connection in
            var nodes: [NodeRecord] = []
            let rows = try await connection.query(
                "SELECT name, address, version, started_at, heartbeat_at FROM node ORDER BY name", logger: Self.quiet
            )
            for try await (name, address, version, started, heartbeat) in rows.decode((String, String?, String, Millis, Millis).self) {
                nodes.append(NodeRecord(name: name, address: address, version: version, startedAt: started.date, heartbeatAt: heartbeat.date))
            }
            return nodes
        }
    }

    /// The database's own clock: the one every node's leases are compared against.
    public func databaseTime() throws(WharfError) -> Date {
        try withConnection { connection in
            for try await now in try await connection.query("SELECT now()", logger: Self.quiet).decode(Millis.self) { return now.date }
            throw WharfError(.database, "PostgreSQL gave no time")
        }
    }
}
