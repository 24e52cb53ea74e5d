/// A size in bytes as operators write it: `1048576`, `512K`, `10M`, `1G` (powers of 1024;
/// `KiB`, `MiB`, `GiB` and `KB`, `MB`, `GB` mean the same).
public enum ByteSize {
    public static func parse(_ text: String) throws(WharfError) -> Int64 {
        let trimmed = text.trimmingWhitespace().uppercased()
        let digits = trimmed.prefix { $0.isNumber }
        let unit = trimmed.dropFirst(digits.count).trimmingWhitespace()
        let multiplier: Int64? = switch unit {
        case "", "B": 1
        case "K", "KB", "KIB": 1 << 10
        case "M", "MB", "MIB": 1 << 20
        case "G", "GB", "GIB": 1 << 30
        case "T", "TB", "TIB": 1 << 40
        default: nil
        }
        guard let value = Int64(digits), value > 0, let multiplier,
              value <= Int64.max / multiplier
        else {
            throw .invalid("'\(text)' is not a size", fix: "write a positive number of bytes, or one with K, M, G or T (powers of 1024), such as 512M")
        }
        return value * multiplier
    }

    /// `1 GiB`, `512 MiB`, `1000 bytes`: the largest unit that divides evenly.
    public static func describe(_ bytes: Int64) -> String {
        for (unit, size) in [("TiB", Int64(1) << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= size && bytes % size == 0 {
            return "\(bytes / size) \(unit)"
        }
        return "\(bytes) bytes"
    }
}
