"""protodesc.py - read a protobuf FileDescriptorSet (protoc --descriptor_set_out)
without the protobuf Python package: the messages, fields and enums that the
Gloo API tools walk.

Only what those tools need is decoded: names, numbers, labels, types, JSON
names, oneofs, map entries and the deprecated option.
"""

# FieldDescriptorProto.Type numbers.
T_DOUBLE, T_FLOAT, T_INT64, T_UINT64, T_INT32, T_FIXED64, T_FIXED32, T_BOOL = 1, 2, 3, 4, 5, 6, 7, 8
T_STRING, T_GROUP, T_MESSAGE, T_BYTES, T_UINT32, T_ENUM = 9, 10, 11, 12, 13, 14
T_SFIXED32, T_SFIXED64, T_SINT32, T_SINT64 = 15, 16, 17, 18
LABEL_REPEATED = 3

_SCALAR = {
    T_DOUBLE: "float", T_FLOAT: "float",
    T_INT64: "int", T_UINT64: "int", T_INT32: "int", T_FIXED64: "int", T_FIXED32: "int",
    T_UINT32: "int", T_SFIXED32: "int", T_SFIXED64: "int", T_SINT32: "int", T_SINT64: "int",
    T_BOOL: "bool", T_STRING: "string", T_BYTES: "bytes",
}

# Well-known types read as one value in YAML/JSON (proto3 JSON mapping).
WELL_KNOWN = {
    "google.protobuf.DoubleValue": "float", "google.protobuf.FloatValue": "float",
    "google.protobuf.Int64Value": "int", "google.protobuf.UInt64Value": "int",
    "google.protobuf.Int32Value": "int", "google.protobuf.UInt32Value": "int",
    "google.protobuf.BoolValue": "bool", "google.protobuf.StringValue": "string",
    "google.protobuf.BytesValue": "bytes",
    "google.protobuf.Duration": "duration", "google.protobuf.Timestamp": "timestamp",
    "google.protobuf.Struct": "struct", "google.protobuf.Value": "value",
    "google.protobuf.ListValue": "list", "google.protobuf.Any": "any",
    "google.protobuf.Empty": "empty",
}


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf):
    """(field number, value) of each field of one encoded message; value is
    an int for varints and fixed ints, bytes for length-delimited."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == 2:
            ln, i = _varint(buf, i)
            v, i = bytes(buf[i:i + ln]), i + ln
        elif wt == 5:
            v, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield num, v


def _deprecated(options, num):
    return any(n == num and v for n, v in _fields(options)) if options else False


class Field:
    def __init__(self, buf):
        self.name = self.type_name = self.json_name = ""
        self.number = self.label = self.type = 0
        self.oneof_index = None
        self.deprecated = False
        for n, v in _fields(buf):
            if n == 1:
                self.name = v.decode()
            elif n == 3:
                self.number = v
            elif n == 4:
                self.label = v
            elif n == 5:
                self.type = v
            elif n == 6:
                self.type_name = v.decode().lstrip(".")
            elif n == 9:
                self.oneof_index = v
            elif n == 10:
                self.json_name = v.decode()
            elif n == 8:
                self.deprecated = _deprecated(v, 3)
        if not self.json_name:
            parts = self.name.split("_")
            self.json_name = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])

    @property
    def repeated(self):
        return self.label == LABEL_REPEATED


class Message:
    def __init__(self, full_name):
        self.full_name = full_name
        self.fields = []
        self.oneofs = []
        self.map_entry = False
        self.deprecated = False


class Enum:
    def __init__(self, full_name):
        self.full_name = full_name
        self.values = []


class DescriptorSet:
    """Every message and enum of a FileDescriptorSet, by full name."""

    def __init__(self, path):
        self.messages = {}
        self.enums = {}
        with open(path, "rb") as f:
            data = f.read()
        for n, v in _fields(data):
            if n == 1:
                self._file(v)

    def _file(self, buf):
        package, msgs, enums = "", [], []
        for n, v in _fields(buf):
            if n == 2:
                package = v.decode()
            elif n == 4:
                msgs.append(v)
            elif n == 5:
                enums.append(v)
        for m in msgs:
            self._message(package, m)
        for e in enums:
            self._enum(package, e)

    def _message(self, scope, buf):
        name, nested, enums = "", [], []
        fields, oneofs, options = [], [], None
        for n, v in _fields(buf):
            if n == 1:
                name = v.decode()
            elif n == 2:
                fields.append(Field(v))
            elif n == 3:
                nested.append(v)
            elif n == 4:
                enums.append(v)
            elif n == 7:
                options = v
            elif n == 8:
                oneofs.append(next((x.decode() for k, x in _fields(v) if k == 1), ""))
        m = Message(scope + "." + name if scope else name)
        m.fields, m.oneofs = fields, oneofs
        if options:
            for k, x in _fields(options):
                if k == 7:
                    m.map_entry = bool(x)
                elif k == 3:
                    m.deprecated = bool(x)
        self.messages[m.full_name] = m
        for x in nested:
            self._message(m.full_name, x)
        for x in enums:
            self._enum(m.full_name, x)

    def _enum(self, scope, buf):
        e = None
        values = []
        for n, v in _fields(buf):
            if n == 1:
                e = Enum(scope + "." + v.decode() if scope else v.decode())
            elif n == 2:
                values.append(next((x.decode() for k, x in _fields(v) if k == 1), ""))
        e.values = values
        self.enums[e.full_name] = e

    def oneof_name(self, msg, field):
        """The oneof a field belongs to ("" when none; proto3 optional's
        synthetic oneofs start with '_')."""
        if field.oneof_index is None or field.oneof_index >= len(msg.oneofs):
            return ""
        name = msg.oneofs[field.oneof_index]
        return "" if name.startswith("_") else name

    def kind(self, field):
        """What a field holds as YAML reads it: 'map' (a map<...>), a scalar
        kind (string, int, float, bool, bytes, duration, struct, ...),
        'enum:<name>' or 'message:<name>'."""
        if field.type == T_MESSAGE or field.type == T_GROUP:
            m = self.messages.get(field.type_name)
            if m is not None and m.map_entry and field.repeated:
                return "map"
            if field.type_name in WELL_KNOWN:
                return WELL_KNOWN[field.type_name]
            return "message:" + field.type_name
        if field.type == T_ENUM:
            return "enum:" + field.type_name
        return _SCALAR[field.type]

    def map_value(self, field):
        """The value field of a map field's entry message."""
        return self.messages[field.type_name].fields[1]
