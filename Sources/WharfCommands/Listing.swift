import Foundation

/// How the `list` commands print: JSON with `--json`; else `empty` when there is nothing,
/// else an optional header and one line per item.
enum Listing {
    static func print<Item: Encodable>(
        _ items: [Item], json: Bool, empty: String, header: String? = nil, line: (Item) -> String
    ) {
        if json {
            Swift.print(Self.json(items))
        } else if items.isEmpty {
            Swift.print(empty)
        } else {
            if let header { Swift.print(header) }
            for item in items { Swift.print(line(item)) }
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
