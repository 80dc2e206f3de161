"""message_text: the words, names and paragraphs the benchmark message generators
(bench_messages.py, bulk_messages.py) write their messages with; each passes its own seeded
random.Random, so every generator's output stays the same from run to run."""
import re
from email.header import Header

words = ("the a of to and in is it that for on with as was be this are at by not from have or but an "
         "list archive thread reply message digest member server client mailbox folder release build test "
         "patch review commit branch merge deploy schedule meeting notes agenda question answer issue fix "
         "config option default value change proposal draft plan budget weekend trip train station "
         "café naïve Köln Grüße déjà-vu smörgåsbord").split()
names = ["Alice Example", "Bob Builder", "Carol Jones", "Dave Smith", "Eve Müller", "Frank Ødegård",
         "Grace Hopper", "Heidi Klein", "Ivan Petrov", "Judy Chen"]
ascii_words = [w for w in words if w.isascii()]


def display(name):  # RFC 2047 for names that are not ASCII, as mail programs write them
    return name if name.isascii() else Header(name, "utf-8").encode()


def addr(name):
    return re.sub(r"[^a-z]", "", name.split()[0].lower()) + "@example.test"


def sentence(rnd):
    s = " ".join(rnd.choice(words) for _ in range(rnd.randint(6, 16)))
    return s[0].upper() + s[1:] + rnd.choice("...?!")


def paragraph(rnd, width=72):
    """A paragraph of sentences, wrapped at width: its lines."""
    text, lines, line = " ".join(sentence(rnd) for _ in range(rnd.randint(2, 6))), [], ""
    for w in text.split():
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = (line + " " + w) if line else w
    return lines + [line]
