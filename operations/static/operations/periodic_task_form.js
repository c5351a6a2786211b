// The periodic task form (django-celery-beat): the chosen crontab in words under its field.
// A static file, not an inline script, so that the Content-Security-Policy allows it.
"use strict";
{
    const $ = django.jQuery;
    $(function() {
        const readable = JSON.parse(document.getElementById("readable-crontabs").textContent);
        const help = $(".field-crontab .help");
        const original = help.html();
        $(".field-crontab_translation").hide();
        $(".field-crontab").on("change", function() {
            const words = readable[$("#id_crontab").val()] || "";
            help.html(original).append(
                document.createElement("br"),
                document.createTextNode("Translation: " + words)
            );
        });
    });
}
