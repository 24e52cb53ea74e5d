/// Text from outside (certificate subjects, file names, display names) made safe to show:
/// for a JSON document, and for a terminal or a log line, where a control character, a
/// newline or a bidirectional override could forge a line or rewrite what is shown.
public enum EscapedText {
    /// `value` as a JSON string literal: quotes, backslashes and control characters escaped.
    public static func json(_ value: String) -> String {
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case "\u{08}": quoted += "\\b"
            case "\u{0C}": quoted += "\\f"
            case let control where control.value < 0x20:
                quoted += "\\u" + hex(control.value, digits: 4)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    /// `value` for a terminal or a text log: control characters (C0, DEL, C1) and
    /// bidirectional formatting characters become `\u{…}`, backslashes `\\`; the rest is
    /// unchanged.
    public static func terminal(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: needsEscape) else { return value }
        var escaped = ""
        for scalar in value.unicodeScalars {
            if scalar == "\\" {
                escaped += "\\\\"
            } else if needsEscape(scalar) {
                escaped += "\\u{" + hex(scalar.value, digits: 1) + "}"
            } else {
                escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Whether `value` has nothing `terminal` would escape: no control character, no
    /// bidirectional formatting character. Backslashes are fine.
    public static func isPrintable(_ value: String) -> Bool {
        !value.unicodeScalars.contains(where: needsEscape)
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00..<0x20, 0x7F..<0xA0: true
        // LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI; LRM, RLM, ALM.
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true
        default: false
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
