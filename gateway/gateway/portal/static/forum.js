/* "Quote" links under forum posts. Without JavaScript a link opens the topic again with
   ?quote=<post> and the server puts the quote in the reply box. With it, the quote goes
   straight into the reply box (after what is typed there already), without a reload. The
   link carries the author's name in data-quote-author and the post's Markdown in
   data-quote-body; the quote is written the same way as the server writes it. */
(function () {
  "use strict";

  function quote(author, body) {
    var lines = body.replace(/\r\n?/g, "\n").trim().split("\n");
    var quoted = lines.map(function (line) {
      return line.trim() ? "> " + line : ">";
    });
    return "> **" + author + ":**\n>\n" + quoted.join("\n") + "\n\n";
  }

  var box = document.getElementById("f-body");
  if (!box) {
    return;
  }
  document.querySelectorAll("a[data-quote-body]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var text = quote(link.getAttribute("data-quote-author") || "", link.getAttribute("data-quote-body") || "");
      var typed = box.value.replace(/\s+$/, "");
      box.value = typed ? typed + "\n\n" + text : text;
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
      box.scrollIntoView({ block: "center" });
    });
  });
})();
