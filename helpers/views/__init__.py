"""The notebook views: a stream shown live in a cell, and a chat built from them.

- :mod:`.show`: ``show_stream``, the one call a lesson makes;
- :mod:`.view`: ``StreamView``, the consumer and painter threads, Stop;
- :mod:`.draw`: what the view looks like and one redraw; :mod:`.blocks`: append-only Markdown
  blocks; :mod:`.toolparts`: a tool call's part in the view;
- :mod:`.meter`: bytes sent to the browser, measured reproducibly; :mod:`.env`: which front
  end the kernel has; :mod:`.chat`: ``ChatUI``.
"""
