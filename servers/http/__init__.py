"""The aiohttp listener: /poll, /longpoll, /sse, /ws, the page and the browser report."""
