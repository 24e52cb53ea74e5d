import ArgumentParser
import Foundation
import WharfCore

/// How the `list` commands print: JSON with `--json`; else `empty` when there is nothing,
/// else an optional header and one line per item.
enum Listing {
    static func print<Item: Encodable>(
        _ items: [Item], json: Bool, empty: String, header: String? = nil, line: (Item) -> String
    ) {
        if json {
            Console.printJSON(Self.json(items))
        } else if items.isEmpty {
            Console.print(empty)
        } else {
            if let header { Console.print(header) }
            for item in items { Console.print(line(item)) }
        }
    }

    /// Pretty, key-sorted JSON with snake_case keys and RFC 3339 times.
    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }
}

/// `--partner`, `--limit` and `--json`, shared by `inbox list` and `transfers list`.
struct ListOptions: ParsableArguments {
    @Option(help: "Only this partner's entries.")
    var partner: String?

    @Option(help: "How many to list, newest first.")
    var limit: Int = 100

    @Flag(help: "Print JSON.")
    var json = false

    /// `--partner`, checked to be a partner name.
    func partnerName() throws(WharfError) -> String? {
        try partner.map { name throws(WharfError) in try PartnerName(name).rawValue }
    }
}
