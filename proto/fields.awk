# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Field numbers of taskmeter.proto as C macros, for code that writes a tag
# by hand (a field appended to a packed message): TM_PB_<MESSAGE>_<FIELD>,
# e.g. TM_PB_FRAME_RECORDS. The .proto stays the one source of the numbers.
# Knows proto2 as taskmeter.proto writes it: top-level messages, one field a
# line; anything else it cannot read stops the build.
function snake(s,    out, c, i) {
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c ~ /[A-Z]/ && i > 1)
			out = out "_"
		out = out toupper(c)
	}
	return out
}
BEGIN {
	print "/* Generated from proto/taskmeter.proto by proto/fields.awk: do not edit. */"
	print "#ifndef TM_PROTO_FIELDS_H"
	print "#define TM_PROTO_FIELDS_H"
}
{ sub(/\/\/.*/, "") }
/^message[ \t]/ {
	if (msg != "") { print FILENAME ":" NR ": nested message" > "/dev/stderr"; exit 1 }
	msg = snake($2)
	next
}
msg != "" && /^[ \t]*(optional|required|repeated)[ \t]/ {
	num = $5
	sub(/;.*/, "", num)
	if ($4 != "=" || num !~ /^[0-9]+$/) {
		print FILENAME ":" NR ": cannot read this field" > "/dev/stderr"; exit 1
	}
	printf "#define TM_PB_%s_%s %s\n", msg, toupper($3), num
	next
}
msg != "" && /^[ \t]*}/ { msg = ""; next }
msg != "" && /[^ \t]/ { print FILENAME ":" NR ": cannot read this line" > "/dev/stderr"; exit 1 }
END { print "#endif /* TM_PROTO_FIELDS_H */" }
