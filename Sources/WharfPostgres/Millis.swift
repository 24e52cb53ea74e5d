import Foundation
import NIOCore
import PostgresNIO

/// A `timestamptz` read back to the millisecond, as the registry writes times: PostgreSQL
/// keeps microseconds, and postgres-nio's conversion of a `Date` can land a microsecond
/// short, so a time read back plain would not equal the one written (nor SQLite's).
struct Millis: PostgresDecodable {
    let date: Date

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat, context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        date = try Date(from: &buffer, type: type, format: format, context: context).roundedToMilliseconds
    }
}
